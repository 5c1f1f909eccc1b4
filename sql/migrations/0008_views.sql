-- The views BI tools and the router read. Column names are a contract: add columns at the
-- end, never rename. They read the clock with now(); tests move time through p_now of the
-- functions that write last_heartbeat.

CREATE VIEW seedcore.active_instances AS
SELECT i.logical_id,
       i.instance_id,
       i.cluster_epoch,
       i.actor_name,
       i.namespace,
       i.node_id,
       i.ip_address,
       i.pid,
       i.started_at,
       i.last_heartbeat,
       now() - i.last_heartbeat AS heartbeat_age,
       i.metadata
  FROM seedcore.registry_instance i
  JOIN seedcore.cluster_epoch e ON e.epoch = i.cluster_epoch AND e.fenced_at IS NULL
 CROSS JOIN seedcore.registry_settings s
 WHERE i.status = 'alive'
   AND i.last_heartbeat >= now() - s.stale_window;

COMMENT ON VIEW seedcore.active_instances IS
    'Every live replica: alive, of the current epoch, with a heartbeat inside the stale window.';
COMMENT ON COLUMN seedcore.active_instances.logical_id IS 'The agent id from the graph.';
COMMENT ON COLUMN seedcore.active_instances.instance_id IS 'This replica''s instance id.';
COMMENT ON COLUMN seedcore.active_instances.cluster_epoch IS 'The current epoch.';
COMMENT ON COLUMN seedcore.active_instances.actor_name IS 'The Ray named-actor name.';
COMMENT ON COLUMN seedcore.active_instances.namespace IS 'The Ray namespace.';
COMMENT ON COLUMN seedcore.active_instances.node_id IS 'The Ray node id.';
COMMENT ON COLUMN seedcore.active_instances.ip_address IS 'The node''s IP address.';
COMMENT ON COLUMN seedcore.active_instances.pid IS 'The worker process id.';
COMMENT ON COLUMN seedcore.active_instances.started_at IS 'When this replica registered.';
COMMENT ON COLUMN seedcore.active_instances.last_heartbeat IS 'Its last accepted heartbeat.';
COMMENT ON COLUMN seedcore.active_instances.heartbeat_age IS 'now() - last_heartbeat.';
COMMENT ON COLUMN seedcore.active_instances.metadata IS 'Runtime details (json object).';

CREATE VIEW seedcore.active_instance AS
SELECT DISTINCT ON (a.logical_id)
       a.logical_id,
       a.instance_id,
       a.cluster_epoch,
       a.actor_name,
       a.namespace,
       a.node_id,
       a.ip_address,
       a.pid,
       a.started_at,
       a.last_heartbeat,
       a.heartbeat_age,
       a.metadata,
       count(*) OVER (PARTITION BY a.logical_id
                      ORDER BY a.last_heartbeat DESC, a.started_at DESC, a.instance_id
                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS live_replicas
  FROM seedcore.active_instances a
 -- The window's ORDER BY repeats the DISTINCT ON order so that one sort serves both.
 ORDER BY a.logical_id, a.last_heartbeat DESC, a.started_at DESC, a.instance_id;

COMMENT ON VIEW seedcore.active_instance IS
    'One row per agent (logical_id): its freshest alive replica of the current epoch inside '
    'the stale window. What the router and BI dashboards read.';
COMMENT ON COLUMN seedcore.active_instance.logical_id IS 'The agent id from the graph.';
COMMENT ON COLUMN seedcore.active_instance.instance_id IS 'The freshest replica''s instance id.';
COMMENT ON COLUMN seedcore.active_instance.cluster_epoch IS 'The current epoch.';
COMMENT ON COLUMN seedcore.active_instance.actor_name IS 'The Ray named-actor name to call.';
COMMENT ON COLUMN seedcore.active_instance.namespace IS 'The Ray namespace.';
COMMENT ON COLUMN seedcore.active_instance.node_id IS 'The Ray node id.';
COMMENT ON COLUMN seedcore.active_instance.ip_address IS 'The node''s IP address.';
COMMENT ON COLUMN seedcore.active_instance.pid IS 'The worker process id.';
COMMENT ON COLUMN seedcore.active_instance.started_at IS 'When this replica registered.';
COMMENT ON COLUMN seedcore.active_instance.last_heartbeat IS 'Its last accepted heartbeat.';
COMMENT ON COLUMN seedcore.active_instance.heartbeat_age IS 'now() - last_heartbeat.';
COMMENT ON COLUMN seedcore.active_instance.metadata IS 'Runtime details (json object).';
COMMENT ON COLUMN seedcore.active_instance.live_replicas IS
    'How many live replicas the agent has (rows of active_instances).';

CREATE VIEW seedcore.instance_health AS
SELECT i.cluster_epoch,
       (e.fenced_at IS NULL) AS is_current_epoch,
       i.status,
       count(*) AS instances,
       count(*) FILTER (WHERE i.status <> 'dead'
                          AND i.last_heartbeat < now() - s.stale_window) AS stale_instances,
       min(i.last_heartbeat) AS oldest_heartbeat,
       max(i.last_heartbeat) AS newest_heartbeat
  FROM seedcore.registry_instance i
  JOIN seedcore.cluster_epoch e ON e.epoch = i.cluster_epoch
 CROSS JOIN seedcore.registry_settings s
 GROUP BY i.cluster_epoch, e.fenced_at, i.status;

COMMENT ON VIEW seedcore.instance_health IS
    'Instance counts by epoch and status, for dashboards and alerts.';
COMMENT ON COLUMN seedcore.instance_health.cluster_epoch IS 'The epoch.';
COMMENT ON COLUMN seedcore.instance_health.is_current_epoch IS 'Whether it is the current epoch.';
COMMENT ON COLUMN seedcore.instance_health.status IS 'starting, alive, draining or dead.';
COMMENT ON COLUMN seedcore.instance_health.instances IS 'How many instances have this status.';
COMMENT ON COLUMN seedcore.instance_health.stale_instances IS
    'Of those, not dead yet but silent for longer than the stale window (expiry candidates).';
COMMENT ON COLUMN seedcore.instance_health.oldest_heartbeat IS 'The oldest last_heartbeat.';
COMMENT ON COLUMN seedcore.instance_health.newest_heartbeat IS 'The newest last_heartbeat.';
