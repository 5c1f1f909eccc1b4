// migration_record: append one applied migration to the history chain.
// params: $previous_version STRING ('BASELINE' for the first), $version STRING,
//         $description STRING, $checksum STRING, $installed_by STRING
// returns: version
// The chain (:__SeedcoreMigration {version: 'BASELINE'})-[:MIGRATED_TO]->(V0001)->... mirrors
// neo4j-migrations' (:__Neo4jMigration) history, under our own label.
MERGE (baseline:__SeedcoreMigration {version: 'BASELINE'})
WITH baseline
MATCH (prev:__SeedcoreMigration {version: $previous_version})
CREATE (prev)-[:MIGRATED_TO]->(m:__SeedcoreMigration {
  version: $version,
  description: $description,
  checksum: $checksum,
  installed_at: timestamp(),
  installed_by: $installed_by
})
RETURN m.version AS version
