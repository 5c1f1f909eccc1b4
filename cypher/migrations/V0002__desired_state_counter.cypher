// V0002: the single desired-state node whose version every desired-state command bumps.
// A data migration: plain Cypher that runs unchanged on Neo4j and FalkorDB.
MERGE (d:DesiredState {id: 'fleet'})
  ON CREATE SET d.version = 0, d.updated_at = timestamp();
