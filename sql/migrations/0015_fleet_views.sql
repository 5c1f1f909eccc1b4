-- What the picture of the fleet (`scripts/fleet.py`) reads besides active_instance, as views
-- a BI tool can read too: instances registered but not beating yet, and per agent what the
-- reconcile audit last said about it. Column names are a contract: add at the end.

CREATE VIEW seedcore.starting_instances AS
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
       i.metadata
  FROM seedcore.registry_instance i
  JOIN seedcore.cluster_epoch e ON e.epoch = i.cluster_epoch AND e.fenced_at IS NULL
 WHERE i.status = 'starting';

COMMENT ON VIEW seedcore.starting_instances IS
    'Instances of the current epoch registered as starting: placed, not yet beating (setup '
    'still running). Expiry turns the silent ones dead.';
COMMENT ON COLUMN seedcore.starting_instances.logical_id IS 'The agent id from the graph.';
COMMENT ON COLUMN seedcore.starting_instances.instance_id IS 'This replica''s instance id.';
COMMENT ON COLUMN seedcore.starting_instances.cluster_epoch IS 'The current epoch.';
COMMENT ON COLUMN seedcore.starting_instances.actor_name IS 'The Ray named-actor name.';
COMMENT ON COLUMN seedcore.starting_instances.namespace IS 'The Ray namespace.';
COMMENT ON COLUMN seedcore.starting_instances.node_id IS 'The Ray node id.';
COMMENT ON COLUMN seedcore.starting_instances.ip_address IS 'The node''s IP address.';
COMMENT ON COLUMN seedcore.starting_instances.pid IS 'The worker process id.';
COMMENT ON COLUMN seedcore.starting_instances.started_at IS 'When this replica registered.';
COMMENT ON COLUMN seedcore.starting_instances.last_heartbeat IS
    'Its registration (a starting instance has not beaten yet).';
COMMENT ON COLUMN seedcore.starting_instances.metadata IS 'Runtime details (json object).';

-- Per agent: its latest finished step (any kind, so a later remove hides an old failure) and
-- whether the latest run's plan listed it as pending. An agent may have either or both.
CREATE VIEW seedcore.reconcile_agent_state AS
WITH last_step AS (
    SELECT DISTINCT ON (a.namespace, a.agent_id)
           a.namespace, a.agent_id, a.kind, a.outcome, a.error, a.finished_at, a.run_id
      FROM seedcore.reconcile_action a
     WHERE a.outcome IN ('succeeded', 'failed', 'pending')
     ORDER BY a.namespace, a.agent_id, a.finished_at DESC, a.run_id DESC
), latest_run AS (
    SELECT r.run_id, r.plan
      FROM seedcore.reconcile_run r
     ORDER BY r.started_at DESC, r.run_id DESC
     LIMIT 1
), planned_pending AS (
    SELECT DISTINCT ON (1, 2)
           coalesce(p.entry ->> 'namespace', '') AS namespace,
           p.entry ->> 'agent_id' AS agent_id,
           p.entry ->> 'reason' AS reason
      FROM latest_run l
     CROSS JOIN LATERAL jsonb_array_elements(
               CASE WHEN jsonb_typeof(l.plan -> 'pending') = 'array' THEN l.plan -> 'pending'
                    ELSE '[]'::jsonb END) AS p (entry)
     WHERE p.entry ->> 'agent_id' IS NOT NULL
)
SELECT coalesce(s.namespace, pp.namespace) AS namespace,
       coalesce(s.agent_id, pp.agent_id) AS agent_id,
       s.kind AS last_kind,
       s.outcome AS last_outcome,
       s.error AS last_error,
       s.finished_at AS last_finished_at,
       s.run_id AS last_run_id,
       (pp.agent_id IS NOT NULL) AS planned_pending,
       pp.reason AS pending_reason
  FROM last_step s
  FULL JOIN planned_pending pp ON pp.namespace = s.namespace AND pp.agent_id = s.agent_id;

COMMENT ON VIEW seedcore.reconcile_agent_state IS
    'Per agent, what the reconcile audit last said: its latest finished step with outcome and '
    'error, and whether the latest run''s plan listed it as pending (waiting for resources).';
COMMENT ON COLUMN seedcore.reconcile_agent_state.namespace IS 'Ray namespace of the agent.';
COMMENT ON COLUMN seedcore.reconcile_agent_state.agent_id IS 'The agent id.';
COMMENT ON COLUMN seedcore.reconcile_agent_state.last_kind IS
    'Its latest finished step: create, replace, remove or archive (NULL: none).';
COMMENT ON COLUMN seedcore.reconcile_agent_state.last_outcome IS
    'succeeded, failed, or pending (created, waiting for resources).';
COMMENT ON COLUMN seedcore.reconcile_agent_state.last_error IS
    'Error of that step when it failed (a user setup failure reads "setup failed: ...").';
COMMENT ON COLUMN seedcore.reconcile_agent_state.last_finished_at IS 'When that step finished.';
COMMENT ON COLUMN seedcore.reconcile_agent_state.last_run_id IS 'The run of that step.';
COMMENT ON COLUMN seedcore.reconcile_agent_state.planned_pending IS
    'Whether the latest run''s plan listed the agent as pending.';
COMMENT ON COLUMN seedcore.reconcile_agent_state.pending_reason IS 'The plan''s pending reason.';

GRANT SELECT ON seedcore.starting_instances, seedcore.reconcile_agent_state
    TO seedcore_runtime, seedcore_bi;
