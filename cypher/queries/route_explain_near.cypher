// route_explain_near: why a task was refused, for the agents that came closest, and how many
//   of the others fail each rule.
// params: $skills LIST<STRING>, $models LIST<STRING>, $organ_id STRING,
//         $min_gpus FLOAT, $requires LIST<STRING>, $limit INTEGER
// returns: one row: agents (fleet size), explained (list of maps {agent_id, organ_id,
//          namespace, met, reasons}, closest first, at most $limit; reasons empty when the
//          graph qualifies the agent), summary (list of maps {rule, reason, agents}: how many
//          agents NOT in explained fail that rule; an agent may count under several)
// Same rules and reason texts as route_explain (tagged `// rule: NAME` alike), but it reads
// only the agents near the task: those meeting every need when there are $limit of them,
// else those holding one of its skills or models, or in its organ (any agents when the task
// names none of these). Closeness = needs met (skills, models, organ); ties in no set order. route_explain stays the full table (every agent, by id) for
// `route.py --explain`; this one is for the refusal on the routing path.
// The summary is counted from the need nodes' edges (no fleet scan): fleet size minus
// holders, for each skill, model and the organ; fleet size minus agents with >= $min_gpus
// (the num_gpus index); agents under each policy that forbids a required capability,
// directly or through their organ. GPU failures are summed as 'fewer than N GPUs'. Counts
// are of edges (an edge duplicated by hand counts twice: the summary is a guide, the
// explained reasons are exact).
//
// 1. The near agents and how many needs each meets.
// 1a. Those that meet every need (skills, models, the organ) are the closest, and a refused
//     task usually has $limit of them (it fails a guardrail, GPUs or liveness, not a need):
//     found as in route_candidates, from the first need's agents with the other needs
//     checked against bound need nodes, streaming until $limit are found (about 3 ms at
//     100,000 agents, where counting every holder's needs as in 1b takes 100-200 ms).
OPTIONAL MATCH (s0:Skill {name: $skills[0]})
OPTIONAL MATCH (s1:Skill {name: coalesce($skills[1], $skills[0])})
OPTIONAL MATCH (s2:Skill {name: coalesce($skills[2], $skills[0])})
OPTIONAL MATCH (s3:Skill {name: coalesce($skills[3], $skills[0])})
OPTIONAL MATCH (m0:Model {name: $models[0]})
OPTIONAL MATCH (m1:Model {name: coalesce($models[1], $models[0])})
OPTIONAL MATCH (m2:Model {name: coalesce($models[2], $models[0])})
OPTIONAL MATCH (organ:Organ {id: $organ_id})
WITH s0, s1, s2, s3, m0, m1, m2, organ, size($skills) <= 4 AND size($models) <= 3 AS in_slots
CALL {
  WITH s0, s1, s2, s3, m0, m1, m2, organ, in_slots
  // a skill or more (and maybe models): from the first skill's agents
  UNWIND CASE WHEN in_slots AND size($skills) > 0 THEN [s0] ELSE [] END AS first
  MATCH (first)<-[:HAS_SKILL]-(a:Agent)-[:HAS_SKILL]->(s1)
  MATCH (a)-[:HAS_SKILL]->(s2)
  MATCH (a)-[:HAS_SKILL]->(s3)
  WHERE (size($models) = 0 OR ((a)-[:USES]->(m0) AND (a)-[:USES]->(m1) AND (a)-[:USES]->(m2)))
    AND ($organ_id IS NULL OR (a)-[:MEMBER_OF]->(organ))
  RETURN a
  UNION ALL
  // models only: from the first model's agents
  WITH m0, m1, m2, organ, in_slots
  UNWIND CASE WHEN in_slots AND size($skills) = 0 AND size($models) > 0 THEN [m0] ELSE [] END
         AS first
  MATCH (first)<-[:USES]-(a:Agent)-[:USES]->(m1)
  MATCH (a)-[:USES]->(m2)
  WHERE $organ_id IS NULL OR (a)-[:MEMBER_OF]->(organ)
  RETURN a
  UNION ALL
  // the organ only: its members
  WITH organ
  UNWIND CASE WHEN size($skills) + size($models) = 0 THEN [organ] ELSE [] END AS first
  MATCH (first)<-[:MEMBER_OF]-(a:Agent)
  RETURN a
  UNION ALL
  // no need at all: any agents
  UNWIND CASE WHEN size($skills) + size($models) = 0 AND $organ_id IS NULL
         THEN [true] ELSE [] END AS whole_fleet
  MATCH (a:Agent)
  RETURN a
}
WITH a
LIMIT $limit
WITH collect(a) AS all_met
// 1b. Fewer than $limit meet every need (and the task has one): count the needs each near
//     agent meets, one row per need met (an index lookup on the Skill, Model or Organ node,
//     then its edges).
//     Either way the rows are (agent, needs met) summed per agent; only agents are grouped
//     (grouping thousands of rows by a list or a map costs several times more).
WITH all_met, size(all_met) >= $limit
               OR (size($skills) + size($models) = 0 AND $organ_id IS NULL) AS enough
CALL {
  WITH all_met, enough
  UNWIND CASE WHEN enough THEN all_met ELSE [] END AS a
  RETURN a, size($skills) + size($models) + CASE WHEN $organ_id IS NULL THEN 0 ELSE 1 END AS w
  UNION ALL
  // rule: skills
  WITH enough
  UNWIND CASE WHEN enough THEN [] ELSE $skills END AS skill
  MATCH (:Skill {name: skill})<-[:HAS_SKILL]-(a:Agent)
  RETURN a, 1 AS w
  UNION ALL
  // rule: models
  WITH enough
  UNWIND CASE WHEN enough THEN [] ELSE $models END AS model
  MATCH (:Model {name: model})<-[:USES]-(a:Agent)
  RETURN a, 1 AS w
  UNION ALL
  // rule: organ
  WITH enough
  UNWIND CASE WHEN enough OR $organ_id IS NULL THEN [] ELSE [$organ_id] END AS organ_id
  MATCH (:Organ {id: organ_id})<-[:MEMBER_OF]-(a:Agent)
  RETURN a, 1 AS w
}
WITH a, sum(w) AS met
// the closest first; among equals, whichever the sort meets first (sorting thousands of
// agents by id as well costs more than the rest of step 1); shown by id below
ORDER BY met DESC
LIMIT $limit
// (a null agent stands in when nobody is near, so the query still returns its row)
WITH collect({agent: a, met: met}) AS near
UNWIND CASE WHEN size(near) = 0 THEN [{agent: null, met: 0}] ELSE near END AS closest
WITH closest.agent AS a, closest.met AS met
// 2. The reasons of each near agent (route_explain's rules, for these agents only).
OPTIONAL MATCH (a)-[:MEMBER_OF]->(o:Organ)
WITH a, met, collect(DISTINCT o.id) AS organ_ids
// rule: skills
OPTIONAL MATCH (a)-[:HAS_SKILL]->(s:Skill)
WHERE s.name IN $skills
WITH a, met, organ_ids, collect(DISTINCT s.name) AS skills_held
// rule: models
OPTIONAL MATCH (a)-[:USES]->(m:Model)
WHERE m.name IN $models
WITH a, met, organ_ids, skills_held, collect(DISTINCT m.name) AS models_used
// rule: agent_policies
OPTIONAL MATCH (a)-[:GOVERNED_BY]->(agent_policy:Policy)
WHERE any(f IN coalesce(agent_policy.forbids, []) WHERE f IN $requires)
WITH a, met, organ_ids, skills_held, models_used, agent_policy
ORDER BY agent_policy.id
WITH a, met, organ_ids, skills_held, models_used,
     collect(DISTINCT {id: agent_policy.id, forbids: agent_policy.forbids}) AS agent_policies
// rule: organ_policies
OPTIONAL MATCH (a)-[:MEMBER_OF]->(via:Organ)-[:GOVERNED_BY]->(organ_policy:Policy)
WHERE any(f IN coalesce(organ_policy.forbids, []) WHERE f IN $requires)
WITH a, met, organ_ids, skills_held, models_used, agent_policies, via, organ_policy
ORDER BY via.id, organ_policy.id
WITH a, met, organ_ids, skills_held, models_used, agent_policies,
     collect(DISTINCT {id: organ_policy.id, forbids: organ_policy.forbids, organ: via.id})
       AS organ_policies
WITH a, met, organ_ids, skills_held, models_used, agent_policies, organ_policies,
     coalesce(a.num_gpus, 0.0) AS has_gpus, toFloat($min_gpus) AS needs_gpus
// GPU counts by hand: toString(1.0) is '1.0' on Neo4j but '1.000000' on FalkorDB
WITH a, met, organ_ids, skills_held, models_used, agent_policies, organ_policies, has_gpus,
     needs_gpus,
     CASE WHEN needs_gpus = toInteger(needs_gpus) THEN toString(toInteger(needs_gpus))
          ELSE toString(toInteger(floor(needs_gpus))) + '.'
               + right('0' + toString(toInteger(round((needs_gpus - floor(needs_gpus)) * 100))), 2)
     END AS needs_text,
     CASE WHEN has_gpus = toInteger(has_gpus) THEN toString(toInteger(has_gpus))
          ELSE toString(toInteger(floor(has_gpus))) + '.'
               + right('0' + toString(toInteger(round((has_gpus - floor(has_gpus)) * 100))), 2)
     END AS has_text
WITH a, met, organ_ids, needs_text,
     // rule: member
     CASE WHEN size(organ_ids) = 0 THEN ['belongs to no organ'] ELSE [] END
     // rule: organ
     + CASE WHEN $organ_id IS NOT NULL AND NOT $organ_id IN organ_ids
            THEN ['not in organ ' + $organ_id] ELSE [] END
     // rule: skills
     + [name IN $skills WHERE NOT name IN skills_held | 'missing skill ' + name]
     // rule: models
     + [name IN $models WHERE NOT name IN models_used | 'missing model ' + name]
     // rule: gpus
     + CASE WHEN has_gpus >= needs_gpus THEN []
            WHEN has_gpus = 0 THEN ['no GPU']
            ELSE ['needs ' + needs_text + ' GPUs, has ' + has_text] END
     // rule: agent_policies
     + reduce(acc = [], p IN [x IN agent_policies WHERE x.id IS NOT NULL] |
         acc + [f IN p.forbids WHERE f IN $requires | 'policy ' + p.id + ' forbids ' + f])
     // rule: organ_policies
     + reduce(acc = [], p IN [x IN organ_policies WHERE x.id IS NOT NULL] |
         acc + [f IN p.forbids WHERE f IN $requires |
                'policy ' + p.id + ' forbids ' + f + ' (through organ ' + p.organ + ')'])
       AS reasons,
     has_gpus < needs_gpus AS short_of_gpus
ORDER BY met DESC, a.id
WITH needs_text,
     collect({agent_id: a.id,
              organ_id: CASE WHEN size(organ_ids) = 0 THEN null ELSE organ_ids[0] END,
              namespace: a.namespace, met: met, reasons: reasons,
              short_of_gpus: short_of_gpus}) AS closest
WITH needs_text, [e IN closest WHERE e.agent_id IS NOT NULL] AS explained
// 3. The summary: per rule, how many agents fail it, counted in a subquery (so that no
//    aggregation over thousands of rows groups by the explained list), then minus the
//    explained agents that fail it. An uncorrelated CALL { } (Neo4j 5 warns that it prefers
//    CALL () { }, which FalkorDB does not parse).
CALL {
  MATCH (counted:Agent)
  WITH count(counted) AS agents
  UNWIND [name IN $skills | {rule: 'skills', key: name, reason: 'missing skill ' + name}]
         + [name IN $models | {rule: 'models', key: name, reason: 'missing model ' + name}]
         + CASE WHEN $organ_id IS NULL THEN []
                ELSE [{rule: 'organ', key: $organ_id, reason: 'not in organ ' + $organ_id}] END
         + CASE WHEN $min_gpus <= 0 THEN [] ELSE [{rule: 'gpus'}] END
         + CASE WHEN size($requires) = 0 THEN [] ELSE [{rule: 'policies'}] END
         // a check nobody fails, so that the fleet size is returned for any task
         + [{rule: 'none'}] AS check
  // Each count is a subquery of its own: grouping thousands of rows by the map `check` (or
  // a list) costs 5x counting them (60 ms against 12 ms for the organs at 100,000 agents).
  // rule: skills
  CALL {
    WITH check
    OPTIONAL MATCH (:Skill {name: CASE WHEN check.rule = 'skills' THEN check.key END})
                   <-[:HAS_SKILL]-(skilled:Agent)
    RETURN count(skilled) AS holders
  }
  // rule: models
  CALL {
    WITH check
    OPTIONAL MATCH (:Model {name: CASE WHEN check.rule = 'models' THEN check.key END})
                   <-[:USES]-(user:Agent)
    RETURN count(user) AS users
  }
  // rule: organ
  CALL {
    WITH check
    OPTIONAL MATCH (:Organ {id: CASE WHEN check.rule = 'organ' THEN check.key END})
                   <-[:MEMBER_OF]-(member:Agent)
    RETURN count(member) AS members
  }
  // rule: gpus (the num_gpus index; agents without the property have none)
  CALL {
    WITH check
    OPTIONAL MATCH (gpu:Agent)
    WHERE check.rule = 'gpus' AND gpu.num_gpus >= $min_gpus
    RETURN count(gpu) AS gpus
  }
  WITH agents, check, holders + users + members + gpus AS passing
  // rule: agent_policies (read from the policy side: few policies forbid anything required)
  OPTIONAL MATCH (blocking:Policy)
  WHERE check.rule = 'policies'
    AND any(f IN coalesce(blocking.forbids, []) WHERE f IN $requires)
  CALL {
    WITH blocking
    OPTIONAL MATCH (blocking)<-[:GOVERNED_BY]-(governed:Agent)
    RETURN count(governed) AS governed
  }
  WITH agents, check, passing,
       collect({rule: 'agent_policies', agents: governed,
                reasons: [f IN coalesce(blocking.forbids, []) WHERE f IN $requires |
                          'policy ' + blocking.id + ' forbids ' + f]}) AS direct
  // rule: organ_policies (members of each organ under such a policy)
  OPTIONAL MATCH (organ_blocking:Policy)<-[:GOVERNED_BY]-(via:Organ)
  WHERE check.rule = 'policies'
    AND any(f IN coalesce(organ_blocking.forbids, []) WHERE f IN $requires)
  CALL {
    WITH via
    OPTIONAL MATCH (via)<-[:MEMBER_OF]-(inside:Agent)
    RETURN count(inside) AS inside
  }
  WITH agents, check, passing, direct,
       collect({rule: 'organ_policies', agents: inside,
                reasons: [f IN coalesce(organ_blocking.forbids, []) WHERE f IN $requires |
                          'policy ' + organ_blocking.id + ' forbids ' + f
                          + ' (through organ ' + via.id + ')']}) AS inherited
  // one entry per reason (the gpus reason is worded outside, where needs_text is known)
  UNWIND CASE WHEN check.rule = 'policies'
              THEN [x IN direct + inherited WHERE x.agents > 0 | x]
              WHEN check.rule = 'none' THEN [{rule: 'none', agents: 0, reasons: [null]}]
              ELSE [{rule: check.rule, agents: agents - passing, reasons: [check.reason]}] END
         AS failing
  UNWIND failing.reasons AS reason
  RETURN max(agents) AS agents,
         collect({rule: failing.rule, reason: reason, agents: failing.agents}) AS failing
}
UNWIND [null] + failing AS entry
WITH explained, agents, entry.rule AS rule,
     CASE WHEN entry.rule = 'gpus' THEN 'fewer than ' + needs_text + ' GPUs'
          ELSE entry.reason END AS reason,
     entry.agents - size([e IN explained WHERE e.reasons IS NOT NULL AND
                          CASE WHEN entry.rule = 'gpus' THEN e.short_of_gpus
                               ELSE entry.reason IN e.reasons END]) AS rest
ORDER BY rest DESC, reason
WITH explained, agents,
     collect(CASE WHEN rest > 0 THEN {rule: rule, reason: reason, agents: rest} END) AS summary
RETURN agents,
       [e IN explained | {agent_id: e.agent_id, organ_id: e.organ_id, namespace: e.namespace,
                          met: e.met, reasons: e.reasons}] AS explained,
       summary
