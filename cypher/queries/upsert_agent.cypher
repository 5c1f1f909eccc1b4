// upsert_agent: create or replace one Agent and its edges, then bump the desired-state version.
// params: $agent_id STRING, $organ_id STRING, $name STRING, $namespace STRING,
//         $lifetime STRING, $num_cpus FLOAT, $num_gpus FLOAT, $memory_mb INTEGER,
//         $custom_resources_json STRING, $max_concurrency INTEGER, $metadata_json STRING,
//         $skills LIST<STRING>, $models LIST<STRING>, $policies LIST<STRING>
// returns: agent_id, version (the new desired-state version)
// Missing Organ, Skill, Model and Policy nodes are created; a Policy created here forbids
// nothing until a DBA sets its `forbids` list. The agent's old MEMBER_OF, HAS_SKILL, USES
// and GOVERNED_BY edges are replaced, so the edges equal the parameters afterwards.
MERGE (a:Agent {id: $agent_id})
SET a.name = $name,
    a.namespace = $namespace,
    a.lifetime = $lifetime,
    a.num_cpus = $num_cpus,
    a.num_gpus = $num_gpus,
    a.memory_mb = $memory_mb,
    a.custom_resources_json = $custom_resources_json,
    a.max_concurrency = $max_concurrency,
    a.metadata_json = $metadata_json,
    a.updated_at = timestamp()
WITH a
OPTIONAL MATCH (a)-[old:MEMBER_OF|HAS_SKILL|USES|GOVERNED_BY]->()
DELETE old
WITH DISTINCT a
MERGE (o:Organ {id: $organ_id})
MERGE (a)-[:MEMBER_OF]->(o)
FOREACH (skill_name IN $skills |
  MERGE (s:Skill {name: skill_name})
  MERGE (a)-[:HAS_SKILL]->(s))
FOREACH (model_name IN $models |
  MERGE (m:Model {name: model_name})
    ON CREATE SET m.deprecated = false
  MERGE (a)-[:USES]->(m))
FOREACH (policy_id IN $policies |
  MERGE (p:Policy {id: policy_id})
    ON CREATE SET p.forbids = []
  MERGE (a)-[:GOVERNED_BY]->(p))
WITH a
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + 1, d.updated_at = timestamp()
RETURN a.id AS agent_id, d.version AS version
