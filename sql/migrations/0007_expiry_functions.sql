-- Expiry: silent instances become dead, guarded by self-preservation.

CREATE FUNCTION seedcore.expire_stale(
    p_timeout interval    DEFAULT NULL,
    p_force   boolean     DEFAULT false,
    p_now     timestamptz DEFAULT NULL
)
RETURNS TABLE (expired integer, candidates integer, live integer, held_back boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now      timestamptz := coalesce(p_now, now());
    v_settings seedcore.registry_settings%ROWTYPE;
    v_epoch    uuid := seedcore.current_epoch();
    v_cutoff   timestamptz;
BEGIN
    SELECT * INTO v_settings FROM seedcore.registry_settings;
    v_cutoff := v_now - coalesce(p_timeout, v_settings.stale_window);

    SELECT count(*)::integer,
           (count(*) FILTER (WHERE r.last_heartbeat < v_cutoff))::integer
      INTO live, candidates
      FROM seedcore.registry_instance r
     WHERE r.cluster_epoch = v_epoch AND r.status <> 'dead';

    held_back := NOT coalesce(p_force, false)
                 AND live >= v_settings.self_preservation_min_instances
                 AND candidates > live * v_settings.self_preservation_share;
    IF held_back THEN
        expired := 0;
        RAISE WARNING 'self-preservation: % of % live instances are stale, expiring none',
            candidates, live
            USING HINT = 'check the network and the heartbeat senders; force the pass to expire anyway';
    ELSE
        -- last_heartbeat < v_cutoff is re-checked on the newest row version, so an instance
        -- that beat while this pass ran is not expired.
        UPDATE seedcore.registry_instance r
           SET status = 'dead', stopped_at = v_now
         WHERE r.cluster_epoch = v_epoch
           AND r.status <> 'dead'
           AND r.last_heartbeat < v_cutoff;
        GET DIAGNOSTICS expired = ROW_COUNT;
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION seedcore.expire_stale(interval, boolean, timestamptz) IS
    'One expiry pass with its verdict: marks dead every non-dead instance of the current '
    'epoch whose last heartbeat is older than p_timeout (default: the stale window), unless '
    'self-preservation holds back. Returns expired, candidates (stale), live (non-dead '
    'before the pass) and held_back. p_force skips self-preservation; p_now injects the clock.';

CREATE FUNCTION seedcore.expire_stale_instances(
    p_timeout interval    DEFAULT NULL,
    p_force   boolean     DEFAULT false,
    p_now     timestamptz DEFAULT NULL
)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT expired FROM seedcore.expire_stale(p_timeout, p_force, p_now)
$$;

COMMENT ON FUNCTION seedcore.expire_stale_instances(interval, boolean, timestamptz) IS
    'One expiry pass; returns how many instances it expired. When self-preservation holds '
    'back it expires none, returns 0 and raises a WARNING saying so (expire_stale() returns '
    'the full verdict). p_force skips self-preservation; p_now injects the clock.';

CREATE FUNCTION seedcore.expire_old_epoch_instances(p_now timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE seedcore.registry_instance
       SET status = 'dead', stopped_at = coalesce(stopped_at, coalesce(p_now, now()))
     WHERE cluster_epoch IS DISTINCT FROM seedcore.current_epoch()
       AND status <> 'dead';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION seedcore.expire_old_epoch_instances(timestamptz) IS
    'Marks dead every non-dead instance of a fenced epoch; returns how many. rotate_epoch '
    'already does this; the function is the idempotent backstop. p_now injects the clock.';

CREATE FUNCTION seedcore.purge_dead_instances(
    p_older_than interval    DEFAULT interval '7 days',
    p_now        timestamptz DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    DELETE FROM seedcore.registry_instance
     WHERE status = 'dead'
       AND stopped_at < coalesce(p_now, now()) - p_older_than;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION seedcore.purge_dead_instances(interval, timestamptz) IS
    'Deletes dead instances stopped longer ago than p_older_than (default 7 days); returns '
    'how many. Keeps the table small; run it from a daily job.';

CREATE FUNCTION seedcore.configure_registry(
    p_stale_window                    interval DEFAULT NULL,
    p_self_preservation_share         numeric  DEFAULT NULL,
    p_self_preservation_min_instances integer  DEFAULT NULL
)
RETURNS seedcore.registry_settings
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE seedcore.registry_settings
       SET stale_window = coalesce(p_stale_window, stale_window),
           self_preservation_share = coalesce(p_self_preservation_share, self_preservation_share),
           self_preservation_min_instances =
               coalesce(p_self_preservation_min_instances, self_preservation_min_instances)
    RETURNING *
$$;

COMMENT ON FUNCTION seedcore.configure_registry(interval, numeric, integer) IS
    'Changes the registry settings; NULL keeps a value. Returns the new settings. For DBAs: '
    'not granted to seedcore_runtime.';
