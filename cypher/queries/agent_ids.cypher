// agent_ids: the id of every Agent, sorted; the cheapest full listing.
// params: none
// returns: agent_id
MATCH (a:Agent)
RETURN a.id AS agent_id
ORDER BY agent_id
