// upsert_agents: upsert_agent for a batch of agents in one statement, one version bump.
// params: $agents LIST<MAP> (each map has the keys of upsert_agent's parameters)
// returns: upserted (integer), version (the desired-state version afterwards)
// Used to load large fleets (seedcore_thin.graph.fleetgen, tests, benchmarks) quickly.
UNWIND $agents AS spec
MERGE (a:Agent {id: spec.agent_id})
SET a.name = spec.name,
    a.namespace = spec.namespace,
    a.lifetime = spec.lifetime,
    a.num_cpus = spec.num_cpus,
    a.num_gpus = spec.num_gpus,
    a.memory_mb = spec.memory_mb,
    a.custom_resources_json = spec.custom_resources_json,
    a.max_concurrency = spec.max_concurrency,
    a.metadata_json = spec.metadata_json,
    a.updated_at = timestamp()
WITH a, spec
OPTIONAL MATCH (a)-[old:MEMBER_OF|HAS_SKILL|USES|GOVERNED_BY]->()
DELETE old
WITH a, spec, count(old) AS replaced_edges
MERGE (o:Organ {id: spec.organ_id})
MERGE (a)-[:MEMBER_OF]->(o)
FOREACH (skill_name IN spec.skills |
  MERGE (s:Skill {name: skill_name})
  MERGE (a)-[:HAS_SKILL]->(s))
FOREACH (model_name IN spec.models |
  MERGE (m:Model {name: model_name})
    ON CREATE SET m.deprecated = false
  MERGE (a)-[:USES]->(m))
FOREACH (policy_id IN spec.policies |
  MERGE (p:Policy {id: policy_id})
    ON CREATE SET p.forbids = []
  MERGE (a)-[:GOVERNED_BY]->(p))
WITH count(a) AS upserted
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + CASE WHEN upserted > 0 THEN 1 ELSE 0 END
RETURN upserted, d.version AS version
