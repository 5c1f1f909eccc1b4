-- Named statements that only tests, benchmarks, scripts/run_pgtap.py and DBAs use (the
-- runtime's calls are sql/queries.sql). Load them with the runtime's loader:
-- Registry(dsn, extra_sql=[this file]). pg_prove runs tests/sql/*.pg, not this file.

-- ===================== registry calls the runtime does not make =====================

-- name: rotate_epoch :scalar
-- Start a new cluster epoch and fence every instance of older ones.
SELECT seedcore.rotate_epoch(%(now)s) AS epoch;

-- name: beat :scalar
-- One heartbeat; true when accepted (the runtime beats in batches: beat_many).
SELECT seedcore.beat(%(instance_id)s, %(epoch)s, %(now)s) AS accepted;

-- name: expire_old_epoch_instances :scalar
-- Mark dead every instance of a fenced epoch; returns how many.
SELECT seedcore.expire_old_epoch_instances(%(now)s) AS expired;

-- name: active_replicas :many
-- Every live replica (the active_instances view), by agent id then freshness.
SELECT logical_id, instance_id, cluster_epoch, actor_name, namespace, node_id,
       host(ip_address) AS ip_address, pid, started_at, last_heartbeat, metadata
  FROM seedcore.active_instances
 ORDER BY logical_id, last_heartbeat DESC, instance_id;

-- name: active_instance_count :scalar
-- How many agents have a live replica (computes the whole active_instance view server-side).
SELECT count(*) AS agents FROM seedcore.active_instance;

-- name: active_instance_of :many
-- The active_instance rows of the given agents only (text[]: candidates), by agent id;
-- benchmarks compare it with the router's read (live_set_version, then the whole view on a change).
SELECT logical_id, instance_id, cluster_epoch, actor_name, namespace, node_id,
       host(ip_address) AS ip_address, pid, started_at, last_heartbeat, metadata, live_replicas
  FROM seedcore.active_instance_of(%(agent_ids)s::text[])
 ORDER BY logical_id;

-- name: reconcile_live_fingerprint :one
-- How many agents are live and a digest of who (namespace NULL: all); md5 over the whole view,
-- so the watch loop reads live_set_version instead.
SELECT count(*) AS live,
       coalesce(md5(string_agg(logical_id || ':' || instance_id::text, ',' ORDER BY logical_id)), '')
           AS digest
  FROM seedcore.active_instance
 WHERE (%(namespace)s::text IS NULL OR namespace = %(namespace)s::text);

-- ===================== reconciler history =====================

-- name: reconcile_runs_recent :many
-- The latest reconcile runs, newest first.
SELECT run_id, status, holder, scope, summary, error, started_at, finished_at
  FROM seedcore.reconcile_runs
 ORDER BY run_id DESC
 LIMIT %(limit)s;

-- name: reconcile_actions_of_run :many
-- The steps of one run in order.
SELECT seq, kind, namespace, agent_id, outcome, error, spec_hash
  FROM seedcore.reconcile_history
 WHERE run_id = %(run_id)s
 ORDER BY seq;

-- ===================== pgTAP (scripts/run_pgtap.py) =====================

-- name: server_version_num :scalar
-- The server's version number, e.g. 150020.
SELECT current_setting('server_version_num')::integer AS version_num;

-- name: pgtap_available :scalar
-- Whether the server has the pgTAP extension files installed.
SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgtap') AS present;

-- name: pgtap_create :exec
-- Install pgTAP into the current database (test databases only).
CREATE EXTENSION IF NOT EXISTS pgtap;

-- ===================== probes: what the roles must refuse, fault injection =====================

-- name: insert_instance_directly :exec
-- Bypass the API: write the table directly (must fail for seedcore_runtime and seedcore_bi).
INSERT INTO seedcore.registry_instance (instance_id, logical_id, cluster_epoch)
VALUES (%(instance_id)s, 'intruder', seedcore.current_epoch());

-- name: select_instances_directly :scalar
-- Bypass the views: read the table directly (must fail for seedcore_bi).
SELECT count(*) FROM seedcore.registry_instance;

-- name: count_instances :one
-- Rows and distinct instance ids in the table (as the owner).
SELECT count(*) AS n_rows, count(DISTINCT instance_id) AS n_ids FROM seedcore.registry_instance;

-- name: status_counts :many
-- Instances by status, as the owner sees them.
SELECT status, count(*) AS n FROM seedcore.registry_instance GROUP BY status ORDER BY status;

-- name: terminate_other_sessions :scalar
-- Kill every other session of this database (simulates a server restart for the pool).
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid();

-- name: instances_of :many
-- Every instance of one agent, newest first, with its status (tests of the lifecycle).
SELECT instance_id, status, last_heartbeat, metadata
  FROM seedcore.registry_instance
 WHERE logical_id = %(logical_id)s
 ORDER BY started_at DESC;
