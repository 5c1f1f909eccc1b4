-- The reconciler's audit trail: one reconcile_run per apply, one reconcile_action per step.
-- Intent is persisted first (begin_run writes every planned action as 'planned' before the
-- reconciler touches Ray), outcomes are written as they happen, bookkeeping is closed last
-- (finish_run). A reconciler that dies mid-apply leaves its run 'running'; the next
-- begin_run under the same lease marks it 'abandoned', and the next pass, reading Ray afresh,
-- converges whatever the dead one left half done.
-- SQLSTATEs: SC102 caller does not hold the lease (from assert_lease), SC103 unknown or
-- closed run / action, SC104 invalid outcome.

CREATE TABLE seedcore.reconcile_run (
    run_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lease_name    text        NOT NULL,
    holder        text        NOT NULL,
    lease_term    bigint      NOT NULL,
    cluster_epoch uuid        NOT NULL REFERENCES seedcore.cluster_epoch (epoch),
    host          text,
    pid           integer,
    scope         text,
    strict        boolean     NOT NULL DEFAULT false,
    plan          jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'running'
        CONSTRAINT reconcile_run_status_valid
        CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'abandoned')),
    error         text,
    summary       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    CONSTRAINT reconcile_run_finished_when_closed
        CHECK ((status = 'running') = (finished_at IS NULL))
);

CREATE INDEX reconcile_run_running ON seedcore.reconcile_run (lease_name)
    WHERE status = 'running';
CREATE INDEX reconcile_run_started_at ON seedcore.reconcile_run (started_at DESC);

COMMENT ON TABLE seedcore.reconcile_run IS
    'One row per reconcile apply: who ran it, under which lease term and epoch, the plan, '
    'and how it ended. Read seedcore.reconcile_runs / seedcore.reconcile_history.';
COMMENT ON COLUMN seedcore.reconcile_run.run_id IS 'Identity of the run.';
COMMENT ON COLUMN seedcore.reconcile_run.lease_name IS 'The lease the run was applied under.';
COMMENT ON COLUMN seedcore.reconcile_run.holder IS 'The reconciler that ran it (host:pid:random).';
COMMENT ON COLUMN seedcore.reconcile_run.lease_term IS 'The lease term (fencing token).';
COMMENT ON COLUMN seedcore.reconcile_run.cluster_epoch IS 'The cluster epoch of the lease.';
COMMENT ON COLUMN seedcore.reconcile_run.host IS 'Host name of the reconciler process.';
COMMENT ON COLUMN seedcore.reconcile_run.pid IS 'Process id of the reconciler process.';
COMMENT ON COLUMN seedcore.reconcile_run.scope IS
    'The Ray namespace the run was limited to; NULL for every namespace in the graph.';
COMMENT ON COLUMN seedcore.reconcile_run.strict IS 'Strict mode: unmanaged actors archived.';
COMMENT ON COLUMN seedcore.reconcile_run.plan IS
    'The whole plan as JSON (create, replace, remove, archive, in_sync, pending, held_back, '
    'invalid), exactly what `scripts/reconcile.py plan --json` prints.';
COMMENT ON COLUMN seedcore.reconcile_run.status IS
    'running, succeeded (every action succeeded or is pending placement), partial (some '
    'failed or were skipped), failed (the run itself failed), abandoned (its reconciler '
    'died; a later run took over).';
COMMENT ON COLUMN seedcore.reconcile_run.error IS 'Why the run failed, when it did.';
COMMENT ON COLUMN seedcore.reconcile_run.summary IS 'Counts of actions by outcome (json).';
COMMENT ON COLUMN seedcore.reconcile_run.started_at IS 'When the intent was persisted.';
COMMENT ON COLUMN seedcore.reconcile_run.finished_at IS 'When the run closed; NULL while running.';
COMMENT ON INDEX seedcore.reconcile_run_running IS 'Finds the open runs a new run abandons.';
COMMENT ON INDEX seedcore.reconcile_run_started_at IS 'Newest runs first, for dashboards.';

CREATE TABLE seedcore.reconcile_action (
    run_id        bigint      NOT NULL REFERENCES seedcore.reconcile_run (run_id) ON DELETE CASCADE,
    seq           integer     NOT NULL,
    kind          text        NOT NULL
        CONSTRAINT reconcile_action_kind_valid
        CHECK (kind IN ('create', 'replace', 'remove', 'archive')),
    namespace     text        NOT NULL,
    agent_id      text        NOT NULL,
    spec_hash     text,
    old_spec_hash text,
    reason        text,
    outcome       text        NOT NULL DEFAULT 'planned'
        CONSTRAINT reconcile_action_outcome_valid
        CHECK (outcome IN ('planned', 'succeeded', 'failed', 'pending', 'skipped', 'abandoned')),
    error         text,
    detail        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    duration_ms   integer,
    finished_at   timestamptz,
    PRIMARY KEY (run_id, seq),
    CONSTRAINT reconcile_action_once_per_run UNIQUE (run_id, kind, namespace, agent_id)
);

CREATE INDEX reconcile_action_agent
    ON seedcore.reconcile_action (namespace, agent_id, finished_at DESC);

COMMENT ON TABLE seedcore.reconcile_action IS
    'One row per planned step of a run, written as planned before the step runs and updated '
    'with its outcome after. Failed steps feed the retry backoff (seedcore.reconcile_backoff).';
COMMENT ON COLUMN seedcore.reconcile_action.run_id IS 'The run this step belongs to.';
COMMENT ON COLUMN seedcore.reconcile_action.seq IS 'Order of the step in the plan.';
COMMENT ON COLUMN seedcore.reconcile_action.kind IS 'create, replace, remove or archive.';
COMMENT ON COLUMN seedcore.reconcile_action.namespace IS 'Ray namespace of the actor.';
COMMENT ON COLUMN seedcore.reconcile_action.agent_id IS 'Agent id = Ray actor name.';
COMMENT ON COLUMN seedcore.reconcile_action.spec_hash IS 'Hash of the spec being deployed.';
COMMENT ON COLUMN seedcore.reconcile_action.old_spec_hash IS 'Hash of the spec being replaced.';
COMMENT ON COLUMN seedcore.reconcile_action.reason IS 'Why the planner asked for the step.';
COMMENT ON COLUMN seedcore.reconcile_action.outcome IS
    'planned (intent persisted, not done yet), succeeded, failed, pending (created, waiting '
    'for resources), skipped (run stopped before it), abandoned (its reconciler died).';
COMMENT ON COLUMN seedcore.reconcile_action.error IS 'Error text of a failed step.';
COMMENT ON COLUMN seedcore.reconcile_action.detail IS
    'Extra facts: the instance id started, the pending reason, an archived actor''s '
    'self-description.';
COMMENT ON COLUMN seedcore.reconcile_action.duration_ms IS 'Wall time of the step.';
COMMENT ON COLUMN seedcore.reconcile_action.finished_at IS 'When the outcome was recorded.';
COMMENT ON INDEX seedcore.reconcile_action_agent IS
    'An agent''s latest steps: backoff and the deployed-hash view read it.';

CREATE FUNCTION seedcore.begin_run(
    p_holder    text,
    p_term      bigint,
    p_plan      jsonb,
    p_scope     text DEFAULT NULL,
    p_strict    boolean DEFAULT false,
    p_host      text DEFAULT NULL,
    p_pid       integer DEFAULT NULL,
    p_lease     text DEFAULT 'reconciler',
    p_now       timestamptz DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, now());
    v_run   bigint;
    v_epoch uuid;
BEGIN
    PERFORM seedcore.assert_lease(p_holder, p_term, p_lease, v_now);
    SELECT l.cluster_epoch INTO v_epoch FROM seedcore.reconcile_lease l WHERE l.name = p_lease;

    -- We hold the lease, so any run still open under it belongs to a dead reconciler.
    UPDATE seedcore.reconcile_action a
       SET outcome = 'abandoned', finished_at = v_now
      FROM seedcore.reconcile_run r
     WHERE a.run_id = r.run_id AND r.lease_name = p_lease AND r.status = 'running'
       AND a.outcome = 'planned';
    UPDATE seedcore.reconcile_run r
       SET status = 'abandoned', finished_at = v_now,
           error = coalesce(r.error, 'reconciler stopped mid-apply; taken over by ' || p_holder)
     WHERE r.lease_name = p_lease AND r.status = 'running';

    INSERT INTO seedcore.reconcile_run
        (lease_name, holder, lease_term, cluster_epoch, host, pid, scope, strict, plan, started_at)
    VALUES
        (p_lease, p_holder, p_term, v_epoch, p_host, p_pid, p_scope, coalesce(p_strict, false),
         coalesce(p_plan, '{}'::jsonb), v_now)
    RETURNING run_id INTO v_run;

    -- Persist the intent: every step of the plan, in apply order, before any runs.
    INSERT INTO seedcore.reconcile_action
        (run_id, seq, kind, namespace, agent_id, spec_hash, old_spec_hash, reason)
    SELECT v_run, row_number() OVER (ORDER BY k.ord, s.ord), k.kind,
           coalesce(s.step ->> 'namespace', ''), s.step ->> 'agent_id',
           s.step ->> 'spec_hash', s.step ->> 'old_spec_hash', s.step ->> 'reason'
      FROM unnest(ARRAY['archive', 'remove', 'replace', 'create']) WITH ORDINALITY AS k (kind, ord)
     CROSS JOIN LATERAL jsonb_array_elements(
               CASE WHEN jsonb_typeof(p_plan -> k.kind) = 'array' THEN p_plan -> k.kind
                    ELSE '[]'::jsonb END) WITH ORDINALITY AS s (step, ord);
    RETURN v_run;
END
$$;

COMMENT ON FUNCTION seedcore.begin_run(text, bigint, jsonb, text, boolean, text, integer, text, timestamptz) IS
    'Opens an audited apply: checks the caller holds the lease (SC102), marks runs left open '
    'under the lease by a dead reconciler as abandoned, stores the plan and writes every step '
    'of it as planned (the persisted intent). Returns the run id.';

CREATE FUNCTION seedcore.record_action(
    p_run_id      bigint,
    p_kind        text,
    p_namespace   text,
    p_agent_id    text,
    p_outcome     text,
    p_error       text DEFAULT NULL,
    p_detail      jsonb DEFAULT NULL,
    p_duration_ms integer DEFAULT NULL,
    p_now         timestamptz DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
    v_run seedcore.reconcile_run%ROWTYPE;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('succeeded', 'failed', 'pending', 'skipped') THEN
        RAISE EXCEPTION 'invalid action outcome %', p_outcome
            USING ERRCODE = 'SC104', HINT = 'use succeeded, failed, pending or skipped';
    END IF;
    SELECT * INTO v_run FROM seedcore.reconcile_run r WHERE r.run_id = p_run_id;
    IF NOT FOUND OR v_run.status <> 'running' THEN
        RAISE EXCEPTION 'reconcile run % is unknown or closed', p_run_id USING ERRCODE = 'SC103';
    END IF;
    -- Fencing: a reconciler that lost its lease must stop writing (and acting).
    PERFORM seedcore.assert_lease(v_run.holder, v_run.lease_term, v_run.lease_name, v_now);

    UPDATE seedcore.reconcile_action a
       SET outcome = p_outcome, error = p_error, detail = coalesce(p_detail, '{}'::jsonb),
           duration_ms = p_duration_ms, finished_at = v_now
     WHERE a.run_id = p_run_id AND a.kind = p_kind AND a.namespace = p_namespace
       AND a.agent_id = p_agent_id AND a.outcome = 'planned';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % has no planned % of %/%', p_run_id, p_kind, p_namespace, p_agent_id
            USING ERRCODE = 'SC103';
    END IF;
END
$$;

COMMENT ON FUNCTION seedcore.record_action(bigint, text, text, text, text, text, jsonb, integer, timestamptz) IS
    'Records the outcome of one planned step (succeeded, failed, pending, skipped; else '
    'SC104). Refuses unknown or closed runs and steps already recorded (SC103), and writes '
    'from a reconciler that lost its lease (SC102).';

CREATE FUNCTION seedcore.finish_run(
    p_run_id bigint,
    p_error  text DEFAULT NULL,
    p_now    timestamptz DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now     timestamptz := coalesce(p_now, now());
    v_summary jsonb;
    v_status  text;
BEGIN
    PERFORM 1 FROM seedcore.reconcile_run r WHERE r.run_id = p_run_id AND r.status = 'running'
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reconcile run % is unknown or closed', p_run_id USING ERRCODE = 'SC103';
    END IF;
    UPDATE seedcore.reconcile_action a
       SET outcome = 'skipped', finished_at = v_now
     WHERE a.run_id = p_run_id AND a.outcome = 'planned';

    SELECT coalesce(jsonb_object_agg(t.outcome, t.n), '{}'::jsonb),
           CASE WHEN p_error IS NOT NULL THEN 'failed'
                WHEN bool_or(t.outcome IN ('failed', 'skipped')) THEN 'partial'
                ELSE 'succeeded' END
      INTO v_summary, v_status
      FROM (SELECT a.outcome, count(*) AS n
              FROM seedcore.reconcile_action a
             WHERE a.run_id = p_run_id
             GROUP BY a.outcome) t;

    UPDATE seedcore.reconcile_run r
       SET status = v_status, summary = v_summary, error = p_error, finished_at = v_now
     WHERE r.run_id = p_run_id;
    RETURN v_status;
END
$$;

COMMENT ON FUNCTION seedcore.finish_run(bigint, text, timestamptz) IS
    'Closes a run last: steps never started become skipped, the summary counts outcomes, '
    'and the status becomes succeeded, partial or (with p_error) failed. Returns the status. '
    'SC103 for an unknown or closed run.';
