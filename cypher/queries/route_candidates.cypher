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
// Shape, for FalkorDB (about 1.3 ms median for the benchmark's task mix at 10,000 agents,
// 10 ms at 100,000): start from the agents of the task's FIRST need (one index lookup, then
// the need node's edges), and check every other need against need nodes bound beforehand
// ("Expand Into": does this agent have an edge to that node?), which costs a fraction of a
// microsecond per agent. What is slow in FalkorDB and avoided here: a per-agent OPTIONAL
// MATCH or pattern predicate (about 10 us an agent), one check over two relationship types
// (`[:HAS_SKILL|USES]`), and grouping thousands of rows more than once.
// - Need slots: up to 4 skills and 3 models are checked that way; an unused slot repeats the
//   first skill (or model), a check every starting agent passes. A task with more needs takes
//   the slower counting branch (one row per need met, counted per agent).
// - The start depends on which needs the task has, so the agents come from one of the
//   UNION ALL branches of the CALL below; each branch reads nothing unless its UNWIND guard
//   applies. A missing skill or model leaves its node null, which matches no agent.
// - Direct policies: the agents governed by a blocking policy are read from the policy side
//   (few policies) and outweigh any need count in one sum per agent.
// - Organ policies: the blocked organs are read once (few organs), not once per agent.
// Organ-less agents never qualify (rule member): the last MATCH requires an organ.

// 1. The need nodes, each an index lookup (null when the task lacks it or the graph does).
// rule: skills
OPTIONAL MATCH (s0:Skill {name: $skills[0]})
OPTIONAL MATCH (s1:Skill {name: coalesce($skills[1], $skills[0])})
OPTIONAL MATCH (s2:Skill {name: coalesce($skills[2], $skills[0])})
OPTIONAL MATCH (s3:Skill {name: coalesce($skills[3], $skills[0])})
// rule: models
OPTIONAL MATCH (m0:Model {name: $models[0]})
OPTIONAL MATCH (m1:Model {name: coalesce($models[1], $models[0])})
OPTIONAL MATCH (m2:Model {name: coalesce($models[2], $models[0])})
// rule: organ (a task with no skill and no model starts from its organ, or every organ)
OPTIONAL MATCH (organ:Organ {id: $organ_id})
OPTIONAL MATCH (every_organ:Organ)
WHERE size($skills) + size($models) = 0 AND $organ_id IS NULL
WITH s0, s1, s2, s3, m0, m1, m2, organ, collect(every_organ) AS every_organ
// rule: organ_policies (organs under a policy that forbids something the task requires)
OPTIONAL MATCH (blocked_organ:Organ)-[:GOVERNED_BY]->(organ_policy:Policy)
WHERE any(f IN coalesce(organ_policy.forbids, []) WHERE f IN $requires)
WITH s0, s1, s2, s3, m0, m1, m2, organ, every_organ, collect(blocked_organ) AS blocked_organs,
     size($skills) <= 4 AND size($models) <= 3 AS in_slots
// 2. The agents that meet every need (weight 1), and those a policy of their own blocks.
//    (No comment may open the CALL block: FalkorDB 4's parser crashes the server on one.)
CALL {
  WITH s0, s1, s2, s3, m0, m1, m2, in_slots
  // skills and models: start from the first skill's agents
  UNWIND CASE WHEN in_slots AND size($skills) > 0 AND size($models) > 0 THEN [s0] ELSE [] END
         AS first
  MATCH (first)<-[:HAS_SKILL]-(a:Agent)-[:USES]->(m0)
  MATCH (a)-[:HAS_SKILL]->(s1)
  MATCH (a)-[:HAS_SKILL]->(s2)
  MATCH (a)-[:HAS_SKILL]->(s3)
  MATCH (a)-[:USES]->(m1)
  MATCH (a)-[:USES]->(m2)
  RETURN a, 1 AS weight
  UNION ALL
  // skills only
  WITH s0, s1, s2, s3, in_slots
  UNWIND CASE WHEN in_slots AND size($skills) > 0 AND size($models) = 0 THEN [s0] ELSE [] END
         AS first
  MATCH (first)<-[:HAS_SKILL]-(a:Agent)-[:HAS_SKILL]->(s1)
  MATCH (a)-[:HAS_SKILL]->(s2)
  MATCH (a)-[:HAS_SKILL]->(s3)
  RETURN a, 1 AS weight
  UNION ALL
  // models only
  WITH m0, m1, m2, in_slots
  UNWIND CASE WHEN in_slots AND size($skills) = 0 AND size($models) > 0 THEN [m0] ELSE [] END
         AS first
  MATCH (first)<-[:USES]-(a:Agent)-[:USES]->(m1)
  MATCH (a)-[:USES]->(m2)
  RETURN a, 1 AS weight
  UNION ALL
  // no skill, no model: the members of the task's organ, or of every organ
  WITH organ, every_organ
  UNWIND CASE WHEN size($skills) + size($models) > 0 THEN []
              WHEN $organ_id IS NULL THEN every_organ ELSE [organ] END AS first
  MATCH (first)<-[:MEMBER_OF]-(a:Agent)
  RETURN a, 1 AS weight
  UNION ALL
  // more needs than slots: one row per need an agent meets, counted
  WITH in_slots
  UNWIND CASE WHEN in_slots THEN []
              ELSE [name IN $skills | {skill: name}] + [name IN $models | {model: name}] END
         AS need
  OPTIONAL MATCH (:Skill {name: need.skill})<-[:HAS_SKILL]-(skilled:Agent)
  WITH need, collect(DISTINCT skilled) AS holders
  OPTIONAL MATCH (:Model {name: need.model})<-[:USES]-(user:Agent)
  WITH need, holders, collect(DISTINCT user) AS users
  UNWIND holders + users AS a
  WITH a, count(need) AS met
  WHERE met = size($skills) + size($models)
  RETURN a, 1 AS weight
  UNION ALL
  // rule: agent_policies (read from the policy side: few policies forbid anything required)
  MATCH (blocking:Policy)
  WHERE any(f IN coalesce(blocking.forbids, []) WHERE f IN $requires)
  MATCH (blocking)<-[:GOVERNED_BY]-(a:Agent)
  RETURN a, -1000000 AS weight
}
// 3. One sum per agent: positive when it meets the needs and no policy of its own blocks it
//    (a duplicated edge only adds to a positive sum).
WITH a, blocked_organs, sum(weight) AS weight
WHERE weight > 0
  // rule: gpus
  AND ($min_gpus <= 0 OR coalesce(a.num_gpus, 0.0) >= $min_gpus)
// rule: member
// rule: organ
MATCH (a)-[:MEMBER_OF]->(o:Organ)
WHERE ($organ_id IS NULL OR o.id = $organ_id) AND NOT o IN blocked_organs
RETURN collect(a.id) AS agent_ids, collect(o.id) AS organ_ids,
       collect(coalesce(a.namespace, '')) AS namespaces
