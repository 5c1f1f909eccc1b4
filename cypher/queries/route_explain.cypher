// route_explain: every agent of the fleet with the reasons it does not qualify for a task.
// params: $skills LIST<STRING>, $models LIST<STRING>, $organ_id STRING,
//         $min_gpus FLOAT, $requires LIST<STRING>
// returns: agent_id, organ_id, namespace,
//          reasons (list of strings, empty when the agent qualifies)
// Same rules and parameters as route_candidates: an agent with no reasons is exactly a row
// of route_candidates (the tests hold both files to that). Reasons, in this order:
//   'belongs to no organ', 'not in organ O', 'missing skill X', 'missing model Y',
//   'no GPU', 'needs N GPUs, has M', 'policy P forbids C',
//   'policy P forbids C (through organ O)'; policies in id order.
// Each rule is tagged `// rule: NAME` as in route_candidates: member, organ, skills, models,
// gpus, agent_policies, organ_policies.
// It reads the whole fleet, so the router runs it only to explain a refusal, never to route.
// GPU counts are formatted by hand: toString(1.0) is '1.0' on Neo4j but '1.000000' on
// FalkorDB, and the reasons must read the same on both.
MATCH (a:Agent)
OPTIONAL MATCH (a)-[:MEMBER_OF]->(o:Organ)
WITH a, collect(DISTINCT o.id) AS organ_ids
// rule: skills
OPTIONAL MATCH (a)-[:HAS_SKILL]->(s:Skill)
WHERE s.name IN $skills
WITH a, organ_ids, collect(DISTINCT s.name) AS skills_held
// rule: models
OPTIONAL MATCH (a)-[:USES]->(m:Model)
WHERE m.name IN $models
WITH a, organ_ids, skills_held, collect(DISTINCT m.name) AS models_used
// rule: agent_policies
OPTIONAL MATCH (a)-[:GOVERNED_BY]->(agent_policy:Policy)
WHERE any(f IN coalesce(agent_policy.forbids, []) WHERE f IN $requires)
WITH a, organ_ids, skills_held, models_used, agent_policy
ORDER BY agent_policy.id
WITH a, organ_ids, skills_held, models_used,
     collect(DISTINCT {id: agent_policy.id, forbids: agent_policy.forbids}) AS agent_policies
// rule: organ_policies
OPTIONAL MATCH (a)-[:MEMBER_OF]->(via:Organ)-[:GOVERNED_BY]->(organ_policy:Policy)
WHERE any(f IN coalesce(organ_policy.forbids, []) WHERE f IN $requires)
WITH a, organ_ids, skills_held, models_used, agent_policies, via, organ_policy
ORDER BY via.id, organ_policy.id
WITH a, organ_ids, skills_held, models_used, agent_policies,
     collect(DISTINCT {id: organ_policy.id, forbids: organ_policy.forbids, organ: via.id})
       AS organ_policies
WITH a, organ_ids, skills_held, models_used, agent_policies, organ_policies,
     coalesce(a.num_gpus, 0.0) AS has_gpus, toFloat($min_gpus) AS needs_gpus
WITH a, organ_ids, skills_held, models_used, agent_policies, organ_policies, has_gpus,
     needs_gpus,
     CASE WHEN needs_gpus = toInteger(needs_gpus) THEN toString(toInteger(needs_gpus))
          ELSE toString(toInteger(floor(needs_gpus))) + '.'
               + right('0' + toString(toInteger(round((needs_gpus - floor(needs_gpus)) * 100))), 2)
     END AS needs_text,
     CASE WHEN has_gpus = toInteger(has_gpus) THEN toString(toInteger(has_gpus))
          ELSE toString(toInteger(floor(has_gpus))) + '.'
               + right('0' + toString(toInteger(round((has_gpus - floor(has_gpus)) * 100))), 2)
     END AS has_text
RETURN a.id AS agent_id,
       CASE WHEN size(organ_ids) = 0 THEN null ELSE organ_ids[0] END AS organ_id,
       a.namespace AS namespace,
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
         AS reasons
ORDER BY agent_id
