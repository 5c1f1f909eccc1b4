// list_agent_specs: every Agent (or the one $agent_id names) with its organ ids, skills,
//   models, services and direct policies, by id.
// params: $agent_id STRING (null: every agent; else that agent only, no row if unknown)
// returns: agent_id, name, namespace, lifetime, num_cpus, num_gpus, memory_mb,
//          custom_resources_json, max_concurrency, metadata_json, entrypoint, params
//          (JSON string), runtime_env (JSON string), placement, organ_ids (list),
//          skills (list), models (list), services (list), policies (list: direct
//          GOVERNED_BY only; organ policies are in list_organ_specs)
// Values come back as stored; seedcore_thin.specs validates them, so one bad node is
// reported without hiding the others. organ_ids is a list so that 0 or 2 organs show up.
// One agent is an index lookup: the whole-fleet scan sits behind an UNWIND of an empty list
// (`$agent_id IS NULL OR a.id = $agent_id` would scan every agent for one).
UNWIND CASE WHEN $agent_id IS NULL THEN [true] ELSE [] END AS whole_fleet
MATCH (everyone:Agent)
WITH collect(everyone) AS fleet
OPTIONAL MATCH (one:Agent {id: $agent_id})
UNWIND fleet + CASE WHEN one IS NULL THEN [] ELSE [one] END AS a
OPTIONAL MATCH (a)-[:MEMBER_OF]->(o:Organ)
WITH a, collect(DISTINCT o.id) AS organ_ids
OPTIONAL MATCH (a)-[:HAS_SKILL]->(s:Skill)
WITH a, organ_ids, collect(DISTINCT s.name) AS skills
OPTIONAL MATCH (a)-[:USES]->(m:Model)
WITH a, organ_ids, skills, collect(DISTINCT m.name) AS models
OPTIONAL MATCH (a)-[:USES_SERVICE]->(svc:Service)
WITH a, organ_ids, skills, models, collect(DISTINCT svc.name) AS services
OPTIONAL MATCH (a)-[:GOVERNED_BY]->(p:Policy)
WITH a, organ_ids, skills, models, services, collect(DISTINCT p.id) AS policies
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
       a.entrypoint AS entrypoint,
       a.params AS params,
       a.runtime_env AS runtime_env,
       a.placement AS placement,
       organ_ids,
       skills,
       models,
       services,
       policies
ORDER BY agent_id
