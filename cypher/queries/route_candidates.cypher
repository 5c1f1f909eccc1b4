// route_candidates: the agents qualified for one task shape (liveness is checked later).
// params: $skills LIST<STRING>, $models LIST<STRING>, $organ_id STRING,
//         $min_gpus FLOAT, $requires LIST<STRING>
// returns: one row: agent_ids (list), organ_ids (list, same order), namespaces (list, same
//          order; '' when the agent names none), in no particular order
// $skills and $models must be free of duplicates (TaskRequest sorts and de-duplicates them);
// $organ_id null means any organ; $requires are the capabilities the task needs, for example
// 'external_network'. An agent qualifies when it has every required skill (HAS_SKILL) and
// model (USES), belongs to the organ when one is given, has num_gpus >= $min_gpus, and no
// policy governing it, directly or through its organ, lists in `forbids` anything the task
// requires. route_explain applies the same rules and says why the others fail.
// Rules, each tagged `// rule: NAME` where it is applied here and in route_explain (one grep
// finds both halves): member, organ, skills, models, gpus, agent_policies, organ_policies.
//
// Shape, for FalkorDB (about 4 ms for a one-skill task matching 800 of 10,000 agents):
// - one row per need ({skill: X}, {model: Y}), each an index lookup on the selective Skill or
//   Model node, collecting the agents that have it; a task with no skill and no model starts
//   from its organ, or from the whole fleet when it names no organ; needs are maps, never
//   'skill:X' strings cut apart again: FalkorDB's substring() crashes the server on some
//   non-ASCII names (seen with 4-byte characters such as emoji);
// - a {blocked: true} row collects the agents governed directly by a policy that forbids
//   something required (few: read from the policy side, never one OPTIONAL MATCH per agent);
// - score = needs met - (needs + 1) per blocking row, so score = number of needs exactly
//   when every need is met and no policy on the agent itself blocks it; the DISTINCT collects
//   keep a duplicated edge from counting twice;
// - a branch that does not apply reads nothing: the whole-fleet scan sits behind an UNWIND
//   of an empty list, and a lookup whose key is null matches no node;
// - organ policies are read once per organ, not once per agent;
// - no pattern predicates in WHERE, no grouping by long lists, one result row (parsing
//   hundreds of rows costs the client more than the query costs the server).
UNWIND CASE WHEN size($skills) + size($models) = 0 AND $organ_id IS NULL
       THEN [true] ELSE [] END AS whole_fleet
MATCH (everyone:Agent)
WITH collect(everyone) AS fleet
UNWIND CASE WHEN size($skills) + size($models) = 0 THEN [null]
       ELSE [name IN $skills | {skill: name}] + [name IN $models | {model: name}] END
       + CASE WHEN size($requires) > 0 THEN [{blocked: true}] ELSE [] END AS need
// rule: skills
OPTIONAL MATCH (:Skill {name: need.skill})<-[:HAS_SKILL]-(skilled:Agent)
WITH fleet, need, collect(DISTINCT skilled) AS skilled
// rule: models
OPTIONAL MATCH (:Model {name: need.model})<-[:USES]-(user:Agent)
WITH fleet, need, skilled, collect(DISTINCT user) AS users
// rule: organ (a task with no skill and no model starts from its organ)
OPTIONAL MATCH (:Organ {id: CASE WHEN need IS NULL THEN $organ_id END})
               <-[:MEMBER_OF]-(member:Agent)
WITH fleet, need, skilled, users, collect(DISTINCT member) AS members
// rule: agent_policies
OPTIONAL MATCH (blocking:Policy)<-[:GOVERNED_BY]-(governed:Agent)
WHERE need.blocked AND any(f IN coalesce(blocking.forbids, []) WHERE f IN $requires)
WITH fleet, need, skilled, users, members, collect(DISTINCT governed) AS governed
WITH CASE WHEN need IS NULL THEN fleet ELSE [] END + skilled + users + members + governed
       AS holders,
     CASE WHEN need IS NULL THEN 0
          WHEN need.blocked THEN -(size($skills) + size($models) + 1)
          ELSE 1 END AS weight
UNWIND holders AS a
WITH a, sum(weight) AS score
WHERE score = size($skills) + size($models)
  // rule: gpus
  AND ($min_gpus <= 0 OR coalesce(a.num_gpus, 0.0) >= $min_gpus)
// rule: member
// rule: organ
MATCH (a)-[:MEMBER_OF]->(o:Organ)
WHERE $organ_id IS NULL OR o.id = $organ_id
WITH o, collect(a) AS organ_agents
// rule: organ_policies
OPTIONAL MATCH (o)-[:GOVERNED_BY]->(organ_policy:Policy)
WHERE any(f IN coalesce(organ_policy.forbids, []) WHERE f IN $requires)
WITH o, organ_agents, count(organ_policy) AS organ_blocks
WHERE organ_blocks = 0
UNWIND organ_agents AS a
RETURN collect(a.id) AS agent_ids, collect(o.id) AS organ_ids,
       collect(coalesce(a.namespace, '')) AS namespaces
