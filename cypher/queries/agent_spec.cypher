// agent_spec: one Agent's spec row (same columns as list_agent_specs); no row if unknown.
// params: $agent_id STRING
// returns: agent_id, name, namespace, lifetime, num_cpus, num_gpus, memory_mb,
//          custom_resources_json, max_concurrency, metadata_json, organ_ids (list),
//          skills (list), models (list), policies (list: direct GOVERNED_BY only)
// For "show me this agent" and as the per-agent baseline in scripts/bench_graph.py.
MATCH (a:Agent {id: $agent_id})
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
