-- The registry's home. Everything the liveness registry owns lives in schema seedcore.
-- seedcore.schema_migrations is created by the migration runner before this file runs (it
-- must exist to record this very migration), so it is only documented here.

CREATE SCHEMA IF NOT EXISTS seedcore;

COMMENT ON SCHEMA seedcore IS
    'seedcore_thin liveness registry: cluster epochs, registered Ray actor instances, '
    'heartbeats, expiry. Read the views; call the functions; never write the tables directly.';

COMMENT ON TABLE seedcore.schema_migrations IS
    'One row per applied file of sql/migrations, written by scripts/migrate.py in the same '
    'transaction as the migration itself.';
COMMENT ON COLUMN seedcore.schema_migrations.version IS 'The NNNN prefix of the file name.';
COMMENT ON COLUMN seedcore.schema_migrations.name IS 'The file name without prefix and .sql.';
COMMENT ON COLUMN seedcore.schema_migrations.checksum IS
    'sha256 of the file as applied; a later change to an applied file is refused.';
COMMENT ON COLUMN seedcore.schema_migrations.applied_at IS 'When the migration committed.';

-- PUBLIC may execute new functions by default, and a per-schema ALTER DEFAULT PRIVILEGES
-- can only add privileges, not take that one away: each roles migration (0009, 0013)
-- revokes it explicitly.
REVOKE ALL ON SCHEMA seedcore FROM PUBLIC;
