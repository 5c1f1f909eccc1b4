-- The reconciler's leader lease, in the style of River's river_leader: one row per lease
-- name; acquire with INSERT ... ON CONFLICT, take over only when the row has expired (or
-- belongs to a fenced cluster epoch), extend only as the holder. The fencing token is the
-- pair (term, cluster_epoch): term grows on every change of hands, and rotating the cluster
-- epoch fences the lease of the old deployment. Time is injectable through p_now.
-- SQLSTATEs: SC101 lease held by someone else, SC102 caller does not hold the lease.

CREATE TABLE seedcore.reconcile_lease (
    name          text        PRIMARY KEY CHECK (name <> ''),
    holder        text        NOT NULL CHECK (holder <> ''),
    term          bigint      NOT NULL CHECK (term > 0),
    cluster_epoch uuid        NOT NULL REFERENCES seedcore.cluster_epoch (epoch),
    acquired_at   timestamptz NOT NULL,
    renewed_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    CONSTRAINT reconcile_lease_expires_after_renewal CHECK (expires_at > renewed_at)
);

COMMENT ON TABLE seedcore.reconcile_lease IS
    'Leader leases of reconcilers: who may apply plans right now. Written only through '
    'seedcore.acquire_lease() and seedcore.release_lease().';
COMMENT ON COLUMN seedcore.reconcile_lease.name IS
    'The lease name; one per independent reconciler scope (default ''reconciler'').';
COMMENT ON COLUMN seedcore.reconcile_lease.holder IS
    'Who holds it: host:pid:random, as the reconciler reported itself.';
COMMENT ON COLUMN seedcore.reconcile_lease.term IS
    'Fencing token: grows by one each time the lease changes hands or is re-acquired after '
    'expiry; an old holder''s writes carry an old term and are refused.';
COMMENT ON COLUMN seedcore.reconcile_lease.cluster_epoch IS
    'The cluster epoch the lease was taken under; rotating the epoch fences the lease.';
COMMENT ON COLUMN seedcore.reconcile_lease.acquired_at IS 'When the current term began.';
COMMENT ON COLUMN seedcore.reconcile_lease.renewed_at IS 'The holder''s last extension.';
COMMENT ON COLUMN seedcore.reconcile_lease.expires_at IS
    'After this instant anyone may take the lease over.';

CREATE FUNCTION seedcore.acquire_lease(
    p_holder text,
    p_ttl    interval DEFAULT interval '30 seconds',
    p_name   text DEFAULT 'reconciler',
    p_now    timestamptz DEFAULT NULL
)
RETURNS TABLE (term bigint, cluster_epoch uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := coalesce(p_now, now());
    v_epoch  uuid;
    v_holder text;
    v_until  timestamptz;
BEGIN
    IF p_holder IS NULL OR p_holder = '' OR p_ttl IS NULL OR p_ttl <= interval '0' THEN
        RAISE EXCEPTION 'acquire_lease needs a holder and a positive ttl'
            USING ERRCODE = '22023';
    END IF;
    SELECT e.epoch INTO v_epoch FROM seedcore.cluster_epoch e WHERE e.fenced_at IS NULL;

    RETURN QUERY
    INSERT INTO seedcore.reconcile_lease AS l
        (name, holder, term, cluster_epoch, acquired_at, renewed_at, expires_at)
    VALUES (p_name, p_holder, 1, v_epoch, v_now, v_now, v_now + p_ttl)
    ON CONFLICT (name) DO UPDATE SET
        -- same holder, unexpired, same epoch: an extension keeps the term
        term = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > v_now
                         AND l.cluster_epoch = EXCLUDED.cluster_epoch
                    THEN l.term ELSE l.term + 1 END,
        acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > v_now
                                AND l.cluster_epoch = EXCLUDED.cluster_epoch
                           THEN l.acquired_at ELSE v_now END,
        holder = EXCLUDED.holder,
        cluster_epoch = EXCLUDED.cluster_epoch,
        renewed_at = v_now,
        expires_at = EXCLUDED.expires_at
     WHERE l.holder = EXCLUDED.holder
        OR l.expires_at <= v_now
        OR l.cluster_epoch <> EXCLUDED.cluster_epoch
    RETURNING l.term, l.cluster_epoch, l.expires_at;

    IF NOT FOUND THEN
        SELECT l.holder, l.expires_at INTO v_holder, v_until
          FROM seedcore.reconcile_lease l WHERE l.name = p_name;
        RAISE EXCEPTION 'reconcile lease % is held by % until %', p_name, v_holder, v_until
            USING ERRCODE = 'SC101', DETAIL = v_holder,
                  HINT = 'wait for the holder to finish or for the lease to expire';
    END IF;
END
$$;

COMMENT ON FUNCTION seedcore.acquire_lease(text, interval, text, timestamptz) IS
    'Acquire or extend the lease p_name for p_ttl. Succeeds for a new lease, for the holder '
    'itself, or when the lease expired or belongs to a fenced epoch; otherwise raises SQLSTATE '
    'SC101 with the holder in DETAIL. Returns the fencing token (term, cluster_epoch) and the '
    'expiry. p_now injects the clock.';

CREATE FUNCTION seedcore.release_lease(
    p_holder text,
    p_name   text DEFAULT 'reconciler',
    p_term   bigint DEFAULT NULL
)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM seedcore.reconcile_lease l
         WHERE l.name = p_name AND l.holder = p_holder
           AND (p_term IS NULL OR l.term = p_term)
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

COMMENT ON FUNCTION seedcore.release_lease(text, text, bigint) IS
    'Give the lease up so the next reconciler need not wait for expiry. Only the holder (and, '
    'when p_term is given, only that term) can release it; returns whether it did.';

CREATE FUNCTION seedcore.assert_lease(
    p_holder text,
    p_term   bigint,
    p_name   text DEFAULT 'reconciler',
    p_now    timestamptz DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1
       FROM seedcore.reconcile_lease l
       JOIN seedcore.cluster_epoch e ON e.epoch = l.cluster_epoch AND e.fenced_at IS NULL
      WHERE l.name = p_name AND l.holder = p_holder AND l.term = p_term
        AND l.expires_at > coalesce(p_now, now());
    IF NOT FOUND THEN
        RAISE EXCEPTION '% does not hold reconcile lease % in term %', p_holder, p_name, p_term
            USING ERRCODE = 'SC102',
                  HINT = 'the lease expired, changed hands or its epoch was fenced';
    END IF;
END
$$;

COMMENT ON FUNCTION seedcore.assert_lease(text, bigint, text, timestamptz) IS
    'Raises SQLSTATE SC102 unless p_holder holds the unexpired lease p_name in term p_term '
    'under the current epoch: the fencing check every audited write goes through.';
