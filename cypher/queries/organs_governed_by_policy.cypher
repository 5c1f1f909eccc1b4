// organs_governed_by_policy: organs under one policy, with how many agents each holds.
// params: $policy_id STRING
// returns: organ_id, agent_count (integer)
// Agents governed directly (not through an organ) are listed by agents_governed_by_policy.
MATCH (o:Organ)-[:GOVERNED_BY]->(p:Policy {id: $policy_id})
OPTIONAL MATCH (a:Agent)-[:MEMBER_OF]->(o)
RETURN o.id AS organ_id, count(a) AS agent_count
ORDER BY organ_id
