// route_candidates: the agents qualified for one task shape, by id (liveness is checked later).
// params: $skills LIST<STRING>, $models LIST<STRING>, $organ_id STRING,
//         $min_gpus FLOAT, $requires LIST<STRING>
// returns: agent_id, organ_id, namespace, num_gpus
// $skills and $models must be free of duplicates (TaskRequest sorts and de-duplicates them);
// $organ_id null means any organ; $requires are the capabilities the task needs, for example
// 'external_network'. An agent qualifies when it has every required skill (HAS_SKILL) and
// model (USES), belongs to the organ when one is given, has num_gpus >= $min_gpus, and no
// policy governing it, directly or through its organ, lists in `forbids` anything the task
// requires. route_explain applies the same rules and says why the others fail.
//
// Shape (FalkorDB runs it in ~2 ms over 10,000 agents):
// - start from the selective Skill and Model nodes (index lookups), one row per need, and
//   count the distinct needs each agent meets; a task with no skill and no model starts
//   from its organ, or from the whole fleet when it names no organ;
// - a branch that does not apply reads nothing: the whole-fleet scan sits behind an UNWIND
//   of an empty list, and a lookup whose key is null matches no node;
// - no pattern predicates in WHERE: OPTIONAL MATCH + count instead;
// - organ policies are read once per organ, then agent policies once per remaining agent;
// - each collect groups by small keys only (grouping by a long list is slow on FalkorDB).
UNWIND CASE WHEN size($skills) + size($models) = 0 AND $organ_id IS NULL
       THEN [true] ELSE [] END AS whole_fleet
MATCH (everyone:Agent)
WITH collect(everyone) AS fleet
UNWIND CASE WHEN size($skills) + size($models) = 0 THEN [null]
       ELSE [name IN $skills | ['skill', name]] + [name IN $models | ['model', name]]
       END AS need
OPTIONAL MATCH (:Skill {name: CASE WHEN need[0] = 'skill' THEN need[1] END})
               <-[:HAS_SKILL]-(skilled:Agent)
WITH fleet, need, collect(skilled) AS skilled
OPTIONAL MATCH (:Model {name: CASE WHEN need[0] = 'model' THEN need[1] END})
               <-[:USES]-(user:Agent)
WITH fleet, need, skilled, collect(user) AS users
OPTIONAL MATCH (:Organ {id: CASE WHEN need IS NULL THEN $organ_id END})
               <-[:MEMBER_OF]-(member:Agent)
WITH fleet, need, skilled, users, collect(member) AS members
UNWIND fleet + skilled + users + members AS a
WITH a, count(DISTINCT need) AS needs_met
WHERE needs_met = size($skills) + size($models)
  AND coalesce(a.num_gpus, 0.0) >= $min_gpus
MATCH (a)-[:MEMBER_OF]->(o:Organ)
WHERE $organ_id IS NULL OR o.id = $organ_id
WITH o, collect(a) AS organ_agents
OPTIONAL MATCH (o)-[:GOVERNED_BY]->(organ_policy:Policy)
WHERE any(f IN coalesce(organ_policy.forbids, []) WHERE f IN $requires)
WITH o, organ_agents, count(organ_policy) AS organ_blocks
WHERE organ_blocks = 0
UNWIND organ_agents AS a
OPTIONAL MATCH (a)-[:GOVERNED_BY]->(agent_policy:Policy)
WHERE any(f IN coalesce(agent_policy.forbids, []) WHERE f IN $requires)
WITH a, o, count(agent_policy) AS agent_blocks
WHERE agent_blocks = 0
RETURN a.id AS agent_id, o.id AS organ_id, a.namespace AS namespace,
       coalesce(a.num_gpus, 0.0) AS num_gpus
ORDER BY agent_id
