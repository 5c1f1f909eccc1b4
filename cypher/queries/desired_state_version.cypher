// desired_state_version: the counter every desired-state command bumps (0 before any write).
// params: none
// returns: version (integer)
// One indexed node lookup, so a watcher can poll it cheaply and re-read specs only on change.
OPTIONAL MATCH (d:DesiredState {id: 'fleet'})
RETURN coalesce(d.version, 0) AS version
