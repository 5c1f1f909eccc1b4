-- Retention of the reconciler's audit trail: reconcile_run / reconcile_action would grow
-- forever. One settings row (like registry_settings) says how long and how many runs to
-- keep; seedcore.prune_reconcile_history() deletes what is past both, a bounded batch per
-- call so it never holds locks for long. The watch loop calls it at a bounded cadence; a
-- DBA may call it (or schedule it) too.
-- Never deleted: a run still in progress, the latest run, and a run holding an agent's last
-- deployment (reconcile_deployed and the retry backoff read that step).
-- SQLSTATE: SC105 invalid retention argument.

CREATE TABLE seedcore.reconcile_settings (
    singleton         boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    history_retention interval NOT NULL DEFAULT interval '30 days'
        CHECK (history_retention >= interval '0'),
    history_max_runs  integer  NOT NULL DEFAULT 10000
        CHECK (history_max_runs >= 1)
);

INSERT INTO seedcore.reconcile_settings DEFAULT VALUES;

COMMENT ON TABLE seedcore.reconcile_settings IS
    'The reconciler''s tunables, a single row. Change them with '
    'seedcore.configure_reconcile_history().';
COMMENT ON COLUMN seedcore.reconcile_settings.singleton IS 'Always true: keeps the table to one row.';
COMMENT ON COLUMN seedcore.reconcile_settings.history_retention IS
    'Reconcile runs that started longer ago than this are pruned (default 30 days).';
COMMENT ON COLUMN seedcore.reconcile_settings.history_max_runs IS
    'At most this many runs are kept, newest first, whatever their age (default 10000).';

CREATE FUNCTION seedcore.configure_reconcile_history(
    p_retention interval DEFAULT NULL,
    p_max_runs  integer  DEFAULT NULL
)
RETURNS seedcore.reconcile_settings
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE seedcore.reconcile_settings
       SET history_retention = coalesce(p_retention, history_retention),
           history_max_runs = coalesce(p_max_runs, history_max_runs)
    RETURNING *
$$;

COMMENT ON FUNCTION seedcore.configure_reconcile_history(interval, integer) IS
    'Changes how long (p_retention) and how many (p_max_runs) reconcile runs are kept; NULL '
    'keeps a value. Returns the new settings. For DBAs: not granted to seedcore_runtime.';

CREATE FUNCTION seedcore.prune_reconcile_history(
    p_older_than interval    DEFAULT NULL,
    p_max_runs   integer     DEFAULT NULL,
    p_batch_size integer     DEFAULT 500,
    p_now        timestamptz DEFAULT NULL
)
RETURNS TABLE (runs_deleted integer, actions_deleted integer, more boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now      timestamptz := coalesce(p_now, now());
    v_older    interval;
    v_max_runs integer;
    v_last     bigint;
    v_cap      bigint;
    v_runs     bigint[];
BEGIN
    SELECT coalesce(p_older_than, s.history_retention), coalesce(p_max_runs, s.history_max_runs)
      INTO v_older, v_max_runs
      FROM seedcore.reconcile_settings s;
    IF v_older < interval '0' OR v_max_runs < 1 OR p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'invalid retention: older_than %, max_runs %, batch_size %',
                v_older, v_max_runs, p_batch_size
            USING ERRCODE = 'SC105',
                  HINT = 'older_than >= 0, max_runs >= 1, batch_size >= 1';
    END IF;

    SELECT max(r.run_id) INTO v_last FROM seedcore.reconcile_run r;
    -- Runs at or below this id are beyond the newest v_max_runs (NULL: fewer runs than that).
    SELECT r.run_id INTO v_cap
      FROM seedcore.reconcile_run r ORDER BY r.run_id DESC OFFSET v_max_runs LIMIT 1;

    -- The oldest prunable runs first, one batch of them. A run holding an agent's last
    -- deployment step (its newest succeeded or pending one) is kept: reconcile_deployed
    -- reports that spec hash and reconcile_backoff counts failures since it. A removal or
    -- archive as last step is kept only while older deployments of the agent remain, so
    -- pruning never brings an older spec hash back as "deployed".
    SELECT coalesce(array_agg(c.run_id), '{}') INTO v_runs
      FROM (SELECT r.run_id
              FROM seedcore.reconcile_run r
             WHERE r.status <> 'running'
               AND r.run_id < v_last
               AND (r.started_at < v_now - v_older OR r.run_id <= v_cap)
               AND NOT EXISTS (
                   SELECT 1
                     FROM seedcore.reconcile_action a
                    WHERE a.run_id = r.run_id
                      AND a.outcome IN ('succeeded', 'pending')
                      AND NOT EXISTS (
                          SELECT 1 FROM seedcore.reconcile_action n
                           WHERE n.namespace = a.namespace AND n.agent_id = a.agent_id
                             AND n.outcome IN ('succeeded', 'pending')
                             AND (n.finished_at, n.run_id) > (a.finished_at, a.run_id))
                      AND (a.kind NOT IN ('remove', 'archive') OR EXISTS (
                          SELECT 1 FROM seedcore.reconcile_action o
                           WHERE o.namespace = a.namespace AND o.agent_id = a.agent_id
                             AND o.outcome IN ('succeeded', 'pending')
                             AND (o.finished_at, o.run_id) < (a.finished_at, a.run_id))))
             ORDER BY r.run_id
             LIMIT p_batch_size) c;

    DELETE FROM seedcore.reconcile_action a WHERE a.run_id = ANY (v_runs);
    GET DIAGNOSTICS actions_deleted = ROW_COUNT;
    DELETE FROM seedcore.reconcile_run r WHERE r.run_id = ANY (v_runs);
    GET DIAGNOSTICS runs_deleted = ROW_COUNT;
    more := runs_deleted = p_batch_size;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION seedcore.prune_reconcile_history(interval, integer, integer, timestamptz) IS
    'Deletes the oldest reconcile runs (with their steps) that started longer ago than '
    'p_older_than or lie beyond the newest p_max_runs (NULL: the reconcile_settings values), '
    'at most p_batch_size runs per call so locks stay short. Keeps runs in progress, the '
    'latest run and runs holding an agent''s last deployment. Returns the counts and whether '
    'the batch was full (more: call again). SC105 for a negative age or a count below 1.';

REVOKE ALL ON seedcore.reconcile_settings FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    seedcore.configure_reconcile_history(interval, integer),
    seedcore.prune_reconcile_history(interval, integer, integer, timestamptz)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    seedcore.prune_reconcile_history(interval, integer, integer, timestamptz)
    TO seedcore_runtime;
