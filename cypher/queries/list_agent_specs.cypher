// list_agent_specs: every Agent with its organ ids, skills, models and direct policies, by id.
// params: none
// returns: agent_id, name, namespace, lifetime, num_cpus, num_gpus, memory_mb,
//          custom_resources_json, max_concurrency, metadata_json, organ_ids (list),
//          skills (list), models (list), policies (list: direct GOVERNED_BY only; organ
//          policies are in list_organ_specs)
// Values come back as stored; seedcore_thin.specs validates them, so one bad node is
// reported without hiding the others. organ_ids is a list so that 0 or 2 organs show up.
MATCH (a:Agent)
OPTIONAL MATCH (a)-[:MEMBER_OF]->(o:Organ)
WITH a, collect(DISTINCT o.id) AS organ_ids
OPTIONAL MATCH (a)-[:HAS_SKILL]->(s:Skill)
WITH a, organ_ids, collect(DISTINCT s.name) AS skills
OPTIONAL MATCH (a)-[:USES]->(m:Model)
WITH a, organ_ids, skills, collect(DISTINCT m.name) AS models
OPTIONAL MATCH (a)-[:GOVERNED_BY]->(p:Policy)
WITH a, organ_ids, skills, models, collect(DISTINCT p.id) AS policies
RETURN a.id AS agent_id,
       a.name AS name,
       a.namespace AS namespace,
       a.lifetime AS lifetime,
       a.num_cpus AS num_cpus,
       a.num_gpus AS num_gpus,
       a.memory_mb AS memory_mb,
       a.custom_resources_json AS custom_resources_json,
       a.max_concurrency AS max_concurrency,
       a.metadata_json AS metadata_json,
       organ_ids,
       skills,
       models,
       policies
ORDER BY agent_id
