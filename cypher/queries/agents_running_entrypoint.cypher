// agents_running_entrypoint: the agents whose implementation is the given entrypoint, with
//   their organ: who gets replaced when that code's settings change, in no particular order.
// params: $entrypoint STRING ('package.module:ClassName'; null: the built-in echo agents)
// returns: agent_id, organ_id, namespace
// The first branch is an index lookup (V0005); the second lists the echo agents, which
// have no entrypoint property, and reads nothing when one is given.
MATCH (a:Agent {entrypoint: $entrypoint})-[:MEMBER_OF]->(o:Organ)
RETURN a.id AS agent_id, o.id AS organ_id, a.namespace AS namespace
UNION
UNWIND CASE WHEN $entrypoint IS NULL THEN [true] ELSE [] END AS echo
MATCH (a:Agent)-[:MEMBER_OF]->(o:Organ)
WHERE a.entrypoint IS NULL
RETURN a.id AS agent_id, o.id AS organ_id, a.namespace AS namespace
