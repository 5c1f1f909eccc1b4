// upsert_organ: create or replace one Organ's edges, then bump the desired-state version.
// params: $organ_id STRING, $provides_skills LIST<STRING>, $uses_services LIST<STRING>,
//         $governed_by_policies LIST<STRING>
// returns: organ_id, version (the new desired-state version)
// Organ policies govern every member agent, so routing caches keyed on the version refresh.
MERGE (o:Organ {id: $organ_id})
SET o.updated_at = timestamp()
WITH o
OPTIONAL MATCH (o)-[old:PROVIDES|USES_SERVICE|GOVERNED_BY]->()
DELETE old
WITH DISTINCT o
FOREACH (skill_name IN $provides_skills |
  MERGE (s:Skill {name: skill_name})
  MERGE (o)-[:PROVIDES]->(s))
FOREACH (service_name IN $uses_services |
  MERGE (svc:Service {name: service_name})
  MERGE (o)-[:USES_SERVICE]->(svc))
FOREACH (policy_id IN $governed_by_policies |
  MERGE (p:Policy {id: policy_id})
    ON CREATE SET p.forbids = []
  MERGE (o)-[:GOVERNED_BY]->(p))
WITH o
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + 1, d.updated_at = timestamp()
RETURN o.id AS organ_id, d.version AS version
