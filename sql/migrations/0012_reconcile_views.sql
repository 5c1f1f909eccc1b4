-- What the reconciler reads back (retry backoff, the hash it last deployed) and what BI
-- tools read (history of runs and actions). Column names are a contract: add at the end.

CREATE VIEW seedcore.reconcile_history AS
SELECT r.run_id,
       r.started_at    AS run_started_at,
       r.finished_at   AS run_finished_at,
       r.status        AS run_status,
       r.holder,
       r.host,
       r.scope,
       r.strict,
       r.cluster_epoch,
       a.seq,
       a.kind,
       a.namespace,
       a.agent_id,
       a.spec_hash,
       a.old_spec_hash,
       a.reason,
       a.outcome,
       a.error,
       a.duration_ms,
       a.finished_at
  FROM seedcore.reconcile_run r
  JOIN seedcore.reconcile_action a ON a.run_id = r.run_id;

COMMENT ON VIEW seedcore.reconcile_history IS
    'Every reconcile step with its run: who changed which agent when, why, and how it went.';
COMMENT ON COLUMN seedcore.reconcile_history.run_id IS 'The run.';
COMMENT ON COLUMN seedcore.reconcile_history.run_started_at IS 'When the run began.';
COMMENT ON COLUMN seedcore.reconcile_history.run_finished_at IS 'When it closed (NULL: running).';
COMMENT ON COLUMN seedcore.reconcile_history.run_status IS
    'running, succeeded, partial, failed or abandoned.';
COMMENT ON COLUMN seedcore.reconcile_history.holder IS 'The reconciler (host:pid:random).';
COMMENT ON COLUMN seedcore.reconcile_history.host IS 'Its host name.';
COMMENT ON COLUMN seedcore.reconcile_history.scope IS 'Namespace it was limited to, or NULL.';
COMMENT ON COLUMN seedcore.reconcile_history.strict IS 'Whether strict mode was on.';
COMMENT ON COLUMN seedcore.reconcile_history.cluster_epoch IS 'The cluster epoch of the run.';
COMMENT ON COLUMN seedcore.reconcile_history.seq IS 'Order of the step in its run.';
COMMENT ON COLUMN seedcore.reconcile_history.kind IS 'create, replace, remove or archive.';
COMMENT ON COLUMN seedcore.reconcile_history.namespace IS 'Ray namespace of the agent.';
COMMENT ON COLUMN seedcore.reconcile_history.agent_id IS 'The agent id.';
COMMENT ON COLUMN seedcore.reconcile_history.spec_hash IS 'Spec hash deployed by the step.';
COMMENT ON COLUMN seedcore.reconcile_history.old_spec_hash IS 'Spec hash it replaced.';
COMMENT ON COLUMN seedcore.reconcile_history.reason IS 'Why the planner asked for it.';
COMMENT ON COLUMN seedcore.reconcile_history.outcome IS
    'planned, succeeded, failed, pending, skipped or abandoned.';
COMMENT ON COLUMN seedcore.reconcile_history.error IS 'Error of a failed step.';
COMMENT ON COLUMN seedcore.reconcile_history.duration_ms IS 'Wall time of the step.';
COMMENT ON COLUMN seedcore.reconcile_history.finished_at IS 'When its outcome was recorded.';

CREATE VIEW seedcore.reconcile_runs AS
SELECT r.run_id,
       r.started_at,
       r.finished_at,
       r.status,
       r.holder,
       r.host,
       r.scope,
       r.strict,
       r.cluster_epoch,
       r.lease_term,
       r.error,
       r.summary,
       r.finished_at - r.started_at AS duration,
       r.plan
  FROM seedcore.reconcile_run r;

COMMENT ON VIEW seedcore.reconcile_runs IS
    'One row per reconcile apply with its outcome counts and the plan it carried out.';
COMMENT ON COLUMN seedcore.reconcile_runs.run_id IS 'The run.';
COMMENT ON COLUMN seedcore.reconcile_runs.started_at IS 'When the run began.';
COMMENT ON COLUMN seedcore.reconcile_runs.finished_at IS 'When it closed (NULL: running).';
COMMENT ON COLUMN seedcore.reconcile_runs.status IS
    'running, succeeded, partial, failed or abandoned.';
COMMENT ON COLUMN seedcore.reconcile_runs.holder IS 'The reconciler (host:pid:random).';
COMMENT ON COLUMN seedcore.reconcile_runs.host IS 'Its host name.';
COMMENT ON COLUMN seedcore.reconcile_runs.scope IS 'Namespace it was limited to, or NULL.';
COMMENT ON COLUMN seedcore.reconcile_runs.strict IS 'Whether strict mode was on.';
COMMENT ON COLUMN seedcore.reconcile_runs.cluster_epoch IS 'The cluster epoch of the run.';
COMMENT ON COLUMN seedcore.reconcile_runs.lease_term IS 'The lease term (fencing token).';
COMMENT ON COLUMN seedcore.reconcile_runs.error IS 'Why the run failed or was abandoned.';
COMMENT ON COLUMN seedcore.reconcile_runs.summary IS 'Counts of steps by outcome (json).';
COMMENT ON COLUMN seedcore.reconcile_runs.duration IS 'finished_at - started_at.';
COMMENT ON COLUMN seedcore.reconcile_runs.plan IS 'The plan as printed by plan --json.';

-- The spec hash each agent was last deployed with, from the latest step that touched it.
-- Lets the reconciler know a pending actor's spec (it cannot answer describe() before it is
-- placed) and recognise it as its own.
CREATE VIEW seedcore.reconcile_deployed AS
SELECT DISTINCT ON (a.namespace, a.agent_id)
       a.namespace,
       a.agent_id,
       a.spec_hash,
       a.outcome,
       a.finished_at AS deployed_at,
       a.run_id,
       a.kind
  FROM seedcore.reconcile_action a
 WHERE a.outcome IN ('succeeded', 'pending')
 ORDER BY a.namespace, a.agent_id, a.finished_at DESC, a.run_id DESC;

COMMENT ON VIEW seedcore.reconcile_deployed IS
    'Per agent, the spec hash of the last successful (or pending) create/replace, or NULL '
    'when the last step removed or archived it.';
COMMENT ON COLUMN seedcore.reconcile_deployed.namespace IS 'Ray namespace of the agent.';
COMMENT ON COLUMN seedcore.reconcile_deployed.agent_id IS 'The agent id.';
COMMENT ON COLUMN seedcore.reconcile_deployed.spec_hash IS
    'Deployed spec hash; NULL after a remove or archive.';
COMMENT ON COLUMN seedcore.reconcile_deployed.outcome IS 'succeeded, or pending placement.';
COMMENT ON COLUMN seedcore.reconcile_deployed.deployed_at IS 'When that step finished.';
COMMENT ON COLUMN seedcore.reconcile_deployed.run_id IS 'The run that did it.';
COMMENT ON COLUMN seedcore.reconcile_deployed.kind IS 'The step: create, replace, remove, archive.';

CREATE FUNCTION seedcore.reconcile_backoff(
    p_namespace text DEFAULT NULL,
    p_base      interval DEFAULT interval '2 seconds',
    p_max       interval DEFAULT interval '5 minutes',
    p_now       timestamptz DEFAULT NULL
)
RETURNS TABLE (namespace text, agent_id text, failures integer, last_error text,
               retry_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH last_ok AS (
        SELECT a.namespace, a.agent_id, max(a.finished_at) AS ok_at
          FROM seedcore.reconcile_action a
         WHERE a.outcome IN ('succeeded', 'pending')
           AND (p_namespace IS NULL OR a.namespace = p_namespace)
         GROUP BY a.namespace, a.agent_id
    ), fails AS (
        SELECT a.namespace, a.agent_id, count(*)::integer AS failures,
               max(a.finished_at) AS failed_at,
               (array_agg(a.error ORDER BY a.finished_at DESC))[1] AS last_error
          FROM seedcore.reconcile_action a
          LEFT JOIN last_ok o ON o.namespace = a.namespace AND o.agent_id = a.agent_id
         WHERE a.outcome = 'failed'
           AND (o.ok_at IS NULL OR a.finished_at > o.ok_at)
           AND (p_namespace IS NULL OR a.namespace = p_namespace)
         GROUP BY a.namespace, a.agent_id
    )
    SELECT f.namespace, f.agent_id, f.failures, f.last_error,
           f.failed_at + least(p_max, p_base * power(2, least(f.failures - 1, 30))) AS retry_at
      FROM fails f
     WHERE f.failed_at + least(p_max, p_base * power(2, least(f.failures - 1, 30)))
           > coalesce(p_now, now())
$$;

COMMENT ON FUNCTION seedcore.reconcile_backoff(text, interval, interval, timestamptz) IS
    'Agents whose latest steps failed and must wait before the next try: consecutive '
    'failures since the last success, and retry_at = last failure + min(p_max, '
    'p_base * 2^(failures-1)). Only agents still inside their wait are returned.';
