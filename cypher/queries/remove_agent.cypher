// remove_agent: delete one Agent with its edges; bump the desired-state version if it existed.
// params: $agent_id STRING
// returns: removed (boolean), version (the desired-state version afterwards)
// Organs, skills, models and policies stay: other agents or DBAs may still use them.
OPTIONAL MATCH (a:Agent {id: $agent_id})
WITH a, a IS NOT NULL AS removed
DETACH DELETE a
WITH removed
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + CASE WHEN removed THEN 1 ELSE 0 END
RETURN removed, d.version AS version
