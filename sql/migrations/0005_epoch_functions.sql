-- Cluster epoch functions. Every function here is SECURITY DEFINER with a pinned
-- search_path, so seedcore_runtime can call it without any privilege on the tables.
-- SQLSTATEs raised by the registry: SC001 fenced / not-current epoch, SC002 unknown
-- instance, SC003 invalid status.

CREATE FUNCTION seedcore.current_epoch()
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT epoch FROM seedcore.cluster_epoch WHERE fenced_at IS NULL
$$;

COMMENT ON FUNCTION seedcore.current_epoch() IS
    'The current cluster epoch. A runtime reads it once at start and registers under it.';

CREATE FUNCTION seedcore.rotate_epoch(p_now timestamptz DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
    v_new uuid;
BEGIN
    -- Serialise rotations; readers (beats) take ACCESS SHARE and are not blocked.
    LOCK TABLE seedcore.cluster_epoch IN SHARE ROW EXCLUSIVE MODE;
    -- Waits for registrations in flight (they hold FOR SHARE on the current epoch row), so
    -- the fencing UPDATE below sees every instance registered under the old epoch.
    UPDATE seedcore.cluster_epoch
       SET fenced_at = greatest(v_now, started_at)
     WHERE fenced_at IS NULL;
    INSERT INTO seedcore.cluster_epoch (started_at) VALUES (v_now) RETURNING epoch INTO v_new;
    UPDATE seedcore.registry_instance
       SET status = 'dead', stopped_at = coalesce(stopped_at, v_now)
     WHERE cluster_epoch <> v_new AND status <> 'dead';
    RETURN v_new;
END
$$;

COMMENT ON FUNCTION seedcore.rotate_epoch(timestamptz) IS
    'Starts a new cluster epoch and fences every instance of older ones: they become dead '
    'and their beats and registrations raise SQLSTATE SC001. Returns the new epoch. '
    'p_now injects the clock (tests); NULL means now().';
