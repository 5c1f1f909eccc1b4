// agents_governed_by_policy: every agent under one policy, directly or through its organ.
// params: $policy_id STRING
// returns: agent_id, organ_id, via ('agent' or 'organ')
MATCH (p:Policy {id: $policy_id})
MATCH (a:Agent)-[:MEMBER_OF]->(o:Organ)
OPTIONAL MATCH (a)-[direct:GOVERNED_BY]->(p)
OPTIONAL MATCH (o)-[inherited:GOVERNED_BY]->(p)
WITH a, o, direct, inherited
WHERE direct IS NOT NULL OR inherited IS NOT NULL
RETURN a.id AS agent_id,
       o.id AS organ_id,
       CASE WHEN direct IS NOT NULL THEN 'agent' ELSE 'organ' END AS via
ORDER BY agent_id
