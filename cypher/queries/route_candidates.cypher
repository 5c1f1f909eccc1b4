// route_candidates: the agents qualified for one task shape (liveness is checked later).
// params: $skills LIST<STRING>, $models LIST<STRING>, $organ_id STRING,
//         $min_gpus FLOAT, $requires LIST<STRING>, $limit INTEGER
// returns: one row per qualified agent, at most $limit rows, in no particular order:
//          agent_id, organ_id, namespace ('' when the agent names none)
// $skills and $models must be free of duplicates (TaskRequest sorts and de-duplicates them);
// $organ_id null means any organ; $requires are the capabilities the task needs, for example
// 'external_network'. An agent qualifies when it has every required skill (HAS_SKILL) and
// model (USES), belongs to the organ when one is given, has num_gpus >= $min_gpus, and no
// policy governing it, directly or through its organ, lists in `forbids` anything the task
// requires. route_explain applies the same rules and says why the others fail.
// Rules, each tagged `// rule: NAME` where it is applied here and in route_explain (one grep
// finds both halves): member, organ, skills, models, gpus, agent_policies, organ_policies.
//
// Shape, for FalkorDB. Nothing is grouped after the agents are found, so rows stream out and
// $limit stops the work early: the router's first decision for a shape asks for a first page
// (32 rows: about 2 ms at 10,000 agents and 3 ms at 100,000, whatever the number qualified)
// and reads the whole list later, in the background (about 2 ms median, 9 ms for 1,700
// qualified agents at 10,000). Costs per agent measured on FalkorDB 4: "Expand Into" (does
// this agent have an edge to that already bound node?) a fraction of a microsecond; a
// per-agent OPTIONAL MATCH to nodes not yet bound about 10 us; grouping 1 us. So:
// - Start from the agents of the task's FIRST need (one index lookup, then the need node's
//   edges), and check every other need as Expand Into against need nodes bound beforehand.
// - Need slots: up to 4 skills and 3 models are checked that way; an unused slot repeats the
//   first skill (or model), a check every starting agent passes. A task with more needs takes
//   the slower counting branch (one row per need met, counted per agent).
// - The start depends on which needs the task has, so the agents come from one of the
//   UNION ALL branches of the CALL below; each branch reads nothing unless its UNWIND guard
//   applies. A missing skill or model leaves its node null, which matches no agent.
// - Organ policies: the blocked organs are read once (few organs), not once per agent.
// - Direct policies: the policies that forbid something the task requires are read once
//   (few); up to 3 are checked per agent as Expand Into (an unused slot is null: no edge);
//   the agents governed by any further one are read from the policy side into a list.
// Organ-less agents never qualify (rule member): the MATCH of step 3 requires an organ.

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
// rule: agent_policies (the policies that forbid something the task requires, and the agents
// governed by the 4th one onwards: a rare case, read from the policy side)
OPTIONAL MATCH (blocking:Policy)
WHERE any(f IN coalesce(blocking.forbids, []) WHERE f IN $requires)
WITH s0, s1, s2, s3, m0, m1, m2, organ, every_organ, blocked_organs, in_slots,
     collect(blocking) AS blocking
OPTIONAL MATCH (more:Policy)<-[:GOVERNED_BY]-(governed:Agent)
WHERE size(blocking) > 3 AND more IN blocking[3..]
WITH s0, s1, s2, s3, m0, m1, m2, organ, every_organ, blocked_organs, in_slots,
     blocking[0] AS b0, blocking[1] AS b1, blocking[2] AS b2,
     collect(governed) AS blocked_agents
// 2. The agents that meet every need.
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
  RETURN a
  UNION ALL
  // skills only
  WITH s0, s1, s2, s3, in_slots
  UNWIND CASE WHEN in_slots AND size($skills) > 0 AND size($models) = 0 THEN [s0] ELSE [] END
         AS first
  MATCH (first)<-[:HAS_SKILL]-(a:Agent)-[:HAS_SKILL]->(s1)
  MATCH (a)-[:HAS_SKILL]->(s2)
  MATCH (a)-[:HAS_SKILL]->(s3)
  RETURN a
  UNION ALL
  // models only
  WITH m0, m1, m2, in_slots
  UNWIND CASE WHEN in_slots AND size($skills) = 0 AND size($models) > 0 THEN [m0] ELSE [] END
         AS first
  MATCH (first)<-[:USES]-(a:Agent)-[:USES]->(m1)
  MATCH (a)-[:USES]->(m2)
  RETURN a
  UNION ALL
  // no skill, no model: the members of the task's organ, or of every organ
  WITH organ, every_organ
  UNWIND CASE WHEN size($skills) + size($models) > 0 THEN []
              WHEN $organ_id IS NULL THEN every_organ ELSE [organ] END AS first
  MATCH (first)<-[:MEMBER_OF]-(a:Agent)
  RETURN a
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
  RETURN a
}
// 3. The other rules, cheapest first, each dropping the agents that fail it.
WITH a, blocked_organs, b0, b1, b2, blocked_agents
// rule: gpus
WHERE ($min_gpus <= 0 OR coalesce(a.num_gpus, 0.0) >= $min_gpus)
// rule: member
// rule: organ
MATCH (a)-[:MEMBER_OF]->(o:Organ)
WHERE ($organ_id IS NULL OR o.id = $organ_id) AND NOT o IN blocked_organs
// rule: agent_policies (no edge to a blocking policy: an unmatched OPTIONAL MATCH is null)
  AND NOT a IN blocked_agents
OPTIONAL MATCH (a)-[g0:GOVERNED_BY]->(b0)
WITH a, o, b1, b2, g0 WHERE g0 IS NULL
OPTIONAL MATCH (a)-[g1:GOVERNED_BY]->(b1)
WITH a, o, b2, g1 WHERE g1 IS NULL
OPTIONAL MATCH (a)-[g2:GOVERNED_BY]->(b2)
WITH a, o, g2 WHERE g2 IS NULL
RETURN a.id AS agent_id, o.id AS organ_id, coalesce(a.namespace, '') AS namespace
LIMIT $limit
