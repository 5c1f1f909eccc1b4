// migration_history: the graph migrations applied so far, oldest first (BASELINE excluded).
// params: none
// returns: version (string, e.g. '0001'), description, checksum (sha256 hex),
//          installed_at (epoch ms), installed_by
MATCH (m:__SeedcoreMigration)
WHERE m.version <> 'BASELINE'
RETURN m.version AS version,
       m.description AS description,
       m.checksum AS checksum,
       m.installed_at AS installed_at,
       m.installed_by AS installed_by
ORDER BY version
