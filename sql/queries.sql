-- Named statements the Python runtime executes, loaded by name with
-- seedcore_thin.queries.sql("NAME"). Values are always bind parameters (%s or %(name)s).
-- Statements marked "identifier" take a database name composed with psycopg.sql.Identifier.

-- ===================== registry: runtime calls =====================

-- name: current_epoch
-- The current cluster epoch.
SELECT seedcore.current_epoch() AS epoch;

-- name: rotate_epoch
-- Start a new cluster epoch and fence every instance of older ones.
SELECT seedcore.rotate_epoch(%(now)s) AS epoch;

-- name: register_instance
-- Register (or re-register) an instance as starting under the given epoch.
SELECT seedcore.register_instance(
    %(instance_id)s, %(logical_id)s, %(epoch)s, %(actor_name)s, %(namespace)s,
    %(node_id)s, %(ip_address)s::inet, %(pid)s, %(metadata)s::jsonb, %(now)s
);

-- name: beat
-- One heartbeat; true when accepted.
SELECT seedcore.beat(%(instance_id)s, %(epoch)s, %(now)s) AS accepted;

-- name: beat_many
-- Heartbeats for many instances in one call (uuid[]); returns how many were accepted.
SELECT seedcore.beat_many(%(instance_ids)s::uuid[], %(epoch)s, %(now)s) AS accepted;

-- name: set_instance_status
-- Set an instance's status (starting, alive, draining, dead).
SELECT seedcore.set_instance_status(%(instance_id)s, %(status)s, %(now)s);

-- name: deregister_instance
-- Mark an instance dead on a clean shutdown.
SELECT seedcore.deregister_instance(%(instance_id)s, %(now)s);

-- name: expire_stale
-- One expiry pass with its verdict (expired, candidates, live, held_back).
SELECT expired, candidates, live, held_back
  FROM seedcore.expire_stale(%(timeout)s::interval, %(force)s, %(now)s);

-- name: expire_old_epoch_instances
-- Mark dead every instance of a fenced epoch; returns how many.
SELECT seedcore.expire_old_epoch_instances(%(now)s) AS expired;

-- name: active_instance
-- The freshest live replica of every agent (the active_instance view), by agent id.
SELECT logical_id, instance_id, cluster_epoch, actor_name, namespace, node_id,
       host(ip_address) AS ip_address, pid, started_at, last_heartbeat, metadata, live_replicas
  FROM seedcore.active_instance
 ORDER BY logical_id;

-- name: active_instance_count
-- How many agents have a live replica (computes the whole active_instance view server-side).
SELECT count(*) AS agents FROM seedcore.active_instance;

-- name: active_replicas
-- Every live replica (the active_instances view), by agent id then freshness.
SELECT logical_id, instance_id, cluster_epoch, actor_name, namespace, node_id,
       host(ip_address) AS ip_address, pid, started_at, last_heartbeat, metadata
  FROM seedcore.active_instances
 ORDER BY logical_id, last_heartbeat DESC, instance_id;

-- name: instance_health
-- Instance counts by epoch and status.
SELECT cluster_epoch, is_current_epoch, status, instances, stale_instances,
       oldest_heartbeat, newest_heartbeat
  FROM seedcore.instance_health
 ORDER BY is_current_epoch DESC, cluster_epoch, status;

-- name: ping
-- Cheapest round trip, to check that the registry answers.
SELECT 1 AS ok;

-- ===================== registry: migration runner =====================

-- name: migrations_lock
-- Serialise migrators of this database (advisory locks are per database).
SELECT pg_advisory_lock(hashtextextended('seedcore_thin.sql_migrations', 0));

-- name: migrations_unlock
-- Release the migrators' lock.
SELECT pg_advisory_unlock(hashtextextended('seedcore_thin.sql_migrations', 0));

-- name: migrations_bootstrap
-- The runner's own bookkeeping table; must exist before the first migration is recorded.
CREATE SCHEMA IF NOT EXISTS seedcore;
CREATE TABLE IF NOT EXISTS seedcore.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- name: migrations_applied
-- Applied migrations in order.
SELECT version, name, checksum FROM seedcore.schema_migrations ORDER BY version;

-- name: migrations_record
-- Record one applied migration (same transaction as the migration).
INSERT INTO seedcore.schema_migrations (version, name, checksum) VALUES (%s, %s, %s);

-- ===================== registry: server administration (tests, bench, stack) ==========

-- name: database_exists
-- Whether a database of this name exists.
SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s) AS present;

-- name: database_create
-- identifier: create an empty database {name}.
CREATE DATABASE {name};

-- name: database_create_from_template
-- identifier: create database {name} as a copy of the migrated template {template}.
CREATE DATABASE {name} TEMPLATE {template};

-- name: database_drop
-- identifier: drop database {name}, disconnecting its sessions (only databases we created).
DROP DATABASE IF EXISTS {name} WITH (FORCE);

-- name: server_version_num
-- The server's version number, e.g. 150020.
SELECT current_setting('server_version_num')::integer AS version_num;

-- name: pgtap_available
-- Whether the server has the pgTAP extension files installed.
SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgtap') AS present;

-- name: pgtap_create
-- Install pgTAP into the current database (test databases only).
CREATE EXTENSION IF NOT EXISTS pgtap;

-- ===================== reconciler: leader lease, audit, backoff (helper C) =====================

-- name: acquire_lease
-- Acquire or extend the reconciler lease; returns the fencing token (SC101 when held by another).
SELECT term, cluster_epoch, expires_at
  FROM seedcore.acquire_lease(%(holder)s, %(ttl)s::interval, %(name)s, %(now)s);

-- name: release_lease
-- Give the lease up (only its holder can); true when released.
SELECT seedcore.release_lease(%(holder)s, %(name)s, %(term)s) AS released;

-- name: begin_run
-- Open an audited apply and persist every planned step as intent; returns the run id.
SELECT seedcore.begin_run(
    %(holder)s, %(term)s, %(plan)s::jsonb, %(scope)s, %(strict)s, %(host)s, %(pid)s,
    %(name)s, %(now)s
) AS run_id;

-- name: record_action
-- Record one step's outcome (succeeded, failed, pending, skipped) with error and details.
SELECT seedcore.record_action(
    %(run_id)s, %(kind)s, %(namespace)s, %(agent_id)s, %(outcome)s, %(error)s,
    %(detail)s::jsonb, %(duration_ms)s, %(now)s
);

-- name: finish_run
-- Close a run last; returns its status (succeeded, partial, failed).
SELECT seedcore.finish_run(%(run_id)s, %(error)s, %(now)s) AS status;

-- name: reconcile_backoff
-- Agents whose recent steps failed and must wait, with retry_at (namespace NULL: all).
SELECT namespace, agent_id, failures, last_error, retry_at
  FROM seedcore.reconcile_backoff(%(namespace)s, %(base)s::interval, %(max)s::interval, %(now)s);

-- name: reconcile_deployed
-- The spec hash each agent was last deployed with (namespace NULL: all).
SELECT namespace, agent_id, spec_hash
  FROM seedcore.reconcile_deployed
 WHERE spec_hash IS NOT NULL
   AND (%(namespace)s::text IS NULL OR namespace = %(namespace)s::text);

-- name: reconcile_live_fingerprint
-- Cheap change signal for watch: how many agents are live and a digest of who (namespace NULL: all).
SELECT count(*) AS live,
       coalesce(md5(string_agg(logical_id || ':' || instance_id::text, ',' ORDER BY logical_id)), '')
           AS digest
  FROM seedcore.active_instance
 WHERE (%(namespace)s::text IS NULL OR namespace = %(namespace)s::text);

-- name: reconcile_runs_recent
-- The latest reconcile runs, newest first (tests, demo).
SELECT run_id, status, holder, scope, summary, error, started_at, finished_at
  FROM seedcore.reconcile_runs
 ORDER BY run_id DESC
 LIMIT %(limit)s;

-- name: reconcile_actions_of_run
-- The steps of one run in order (tests, demo).
SELECT seq, kind, namespace, agent_id, outcome, error, spec_hash
  FROM seedcore.reconcile_history
 WHERE run_id = %(run_id)s
 ORDER BY seq;

-- name: prune_reconcile_history :one
-- Delete one batch of old reconcile runs (NULL arguments: the reconcile_settings values).
SELECT runs_deleted, actions_deleted, more
  FROM seedcore.prune_reconcile_history(%(older_than)s::interval, %(max_runs)s::integer,
                                        %(batch_size)s::integer, %(now)s::timestamptz);
