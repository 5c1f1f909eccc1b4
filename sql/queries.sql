-- The named calls the running runtime makes (heartbeat relay, router, reconciler), loaded
-- by name: Registry.call("NAME", param=value) returns the SHAPE of the header:
-- :one (the row), :many (every row), :scalar (first column), :exec (nothing).
-- Values are always %(name)s bind parameters; one left out is NULL (so p_now => now()).
-- The migrator's and the local stack's statements live in setup.sql; statements only tests,
-- benchmarks and DBAs use live in tests/sql/admin.sql.

-- ===================== registry: heartbeat relay and router =====================

-- name: current_epoch :scalar
-- The current cluster epoch.
SELECT seedcore.current_epoch() AS epoch;

-- name: register_instance :exec
-- Register (or re-register) an instance as starting under the given epoch.
SELECT seedcore.register_instance(
    %(instance_id)s, %(logical_id)s, %(epoch)s, %(actor_name)s, %(namespace)s,
    %(node_id)s, %(ip_address)s::inet, %(pid)s, %(metadata)s::jsonb, %(now)s
);

-- name: beat_many :scalar
-- Heartbeats for many instances in one call (uuid[]); returns how many were accepted.
SELECT seedcore.beat_many(%(instance_ids)s::uuid[], %(epoch)s, %(now)s) AS accepted;

-- name: deregister_instance :exec
-- Mark an instance dead on a clean shutdown.
SELECT seedcore.deregister_instance(%(instance_id)s, %(now)s);

-- name: set_instance_status :exec
-- Set an instance's status (the relay marks a draining agent; starting, alive, draining, dead).
SELECT seedcore.set_instance_status(%(instance_id)s, %(status)s, %(now)s);

-- name: expire_stale :one
-- One expiry pass with its verdict (expired, candidates, live, held_back).
SELECT expired, candidates, live, held_back
  FROM seedcore.expire_stale(%(timeout)s::interval, coalesce(%(force)s, false), %(now)s);

-- name: active_instance :many
-- The freshest live replica of every agent (the active_instance view), by agent id.
SELECT logical_id, instance_id, cluster_epoch, actor_name, namespace, node_id,
       host(ip_address) AS ip_address, pid, started_at, last_heartbeat, metadata, live_replicas
  FROM seedcore.active_instance
 ORDER BY logical_id;

-- name: instance_health :many
-- Instance counts by epoch and status (the metrics endpoint reads them at scrape time).
SELECT cluster_epoch, is_current_epoch, status, instances, stale_instances,
       oldest_heartbeat, newest_heartbeat
  FROM seedcore.instance_health
 ORDER BY is_current_epoch DESC, cluster_epoch, status;

-- name: live_set :many
-- What the router needs of active_instance (agent, instance, actor name, namespace), in no order.
SELECT logical_id, instance_id::text AS instance_id, actor_name, namespace
  FROM seedcore.active_instance;

-- name: live_set_version :scalar
-- The live-set change counter (0016): read it before active_instance, re-read the view only when it moved.
SELECT seedcore.live_set_version() AS version;

-- ===================== reconciler: leader lease, audit, read-backs =====================

-- name: acquire_lease :one
-- Acquire or extend the reconciler lease; returns the fencing token (SC101 when held by another).
SELECT term, cluster_epoch, expires_at
  FROM seedcore.acquire_lease(%(holder)s, %(ttl)s::interval, %(name)s, %(now)s);

-- name: release_lease :scalar
-- Give the lease up (only its holder can); true when released.
SELECT seedcore.release_lease(%(holder)s, %(name)s, %(term)s) AS released;

-- name: begin_run :scalar
-- Open an audited apply and persist every planned step as intent; returns the run id.
SELECT seedcore.begin_run(
    %(holder)s, %(term)s, %(plan)s::jsonb, %(scope)s, %(strict)s, %(host)s, %(pid)s,
    %(name)s, %(now)s
) AS run_id;

-- name: record_action :exec
-- Record one step's outcome (succeeded, failed, pending, skipped) with error and details.
SELECT seedcore.record_action(
    %(run_id)s, %(kind)s, %(namespace)s, %(agent_id)s, %(outcome)s, %(error)s,
    %(detail)s::jsonb, %(duration_ms)s, %(now)s
);

-- name: finish_run :scalar
-- Close a run last; returns its status (succeeded, partial, failed).
SELECT seedcore.finish_run(%(run_id)s, %(error)s, %(now)s) AS status;

-- name: reconcile_backoff :many
-- Agents whose recent steps failed and must wait, with retry_at (namespace NULL: all). The
-- backoff formula and its base and cap live in the function alone (its defaults).
SELECT namespace, agent_id, failures, last_error, retry_at
  FROM seedcore.reconcile_backoff(p_namespace => %(namespace)s, p_now => %(now)s);

-- name: reconcile_deployed :many
-- The spec hash each agent was last deployed with (namespace NULL: all).
SELECT namespace, agent_id, spec_hash
  FROM seedcore.reconcile_deployed
 WHERE spec_hash IS NOT NULL
   AND (%(namespace)s::text IS NULL OR namespace = %(namespace)s::text);

-- name: prune_reconcile_history :one
-- Delete one batch of old reconcile runs (NULL arguments: the reconcile_settings values).
SELECT runs_deleted, actions_deleted, more
  FROM seedcore.prune_reconcile_history(%(older_than)s::interval, %(max_runs)s::integer,
                                        %(batch_size)s::integer, %(now)s::timestamptz);

-- ===================== the picture of the fleet (scripts/fleet.py) =====================

-- name: starting_instances :many
-- Instances registered but not beating yet (setup running), by agent id then age.
SELECT logical_id, instance_id, actor_name, namespace, node_id,
       host(ip_address) AS ip_address, pid, started_at, last_heartbeat
  FROM seedcore.starting_instances
 ORDER BY logical_id, started_at DESC, instance_id;

-- name: reconcile_agent_state :many
-- Per agent, the latest finished reconcile step (outcome, error) and whether the latest plan left it pending.
SELECT namespace, agent_id, last_kind, last_outcome, last_error, last_finished_at,
       planned_pending, pending_reason
  FROM seedcore.reconcile_agent_state
 ORDER BY namespace, agent_id;
