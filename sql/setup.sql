-- Named statements that set databases up rather than run the fleet: the migrator's
-- bookkeeping (seedcore_thin.migrations) and the local stack's server administration
-- (seedcore_thin.embedded.postgres). Same header convention as queries.sql. Statements marked
-- "identifier" take a database name composed with psycopg.sql.Identifier.

-- ===================== migrator =====================

-- name: migrations_lock :exec
-- Serialise migrators of this database (advisory locks are per database).
SELECT pg_advisory_lock(hashtextextended('seedcore_thin.sql_migrations', 0));

-- name: migrations_unlock :exec
-- Release the migrators' lock.
SELECT pg_advisory_unlock(hashtextextended('seedcore_thin.sql_migrations', 0));

-- name: migrations_bootstrap :exec
-- The runner's own bookkeeping table; must exist before the first migration is recorded.
CREATE SCHEMA IF NOT EXISTS seedcore;
CREATE TABLE IF NOT EXISTS seedcore.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- name: migrations_applied :many
-- Applied migrations in order.
SELECT version, name, checksum FROM seedcore.schema_migrations ORDER BY version;

-- name: migrations_record :exec
-- Record one applied migration (same transaction as the migration).
INSERT INTO seedcore.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- ===================== local stack: server administration =====================

-- name: ping :scalar
-- Cheapest round trip, to check that the server answers.
SELECT 1 AS ok;

-- name: database_exists :scalar
-- Whether a database of this name exists.
SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s) AS present;

-- name: database_create :exec
-- identifier: create an empty database {name}.
CREATE DATABASE {name};

-- name: database_create_from_template :exec
-- identifier: create database {name} as a copy of the migrated template {template}.
CREATE DATABASE {name} TEMPLATE {template};

-- name: database_drop :exec
-- identifier: drop database {name}, disconnecting its sessions (only databases we created).
DROP DATABASE IF EXISTS {name} WITH (FORCE);
