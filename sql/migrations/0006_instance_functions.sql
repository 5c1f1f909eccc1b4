-- Registration, heartbeats and status changes of one instance.

CREATE FUNCTION seedcore.register_instance(
    p_instance_id uuid,
    p_logical_id  text,
    p_epoch       uuid,
    p_actor_name  text,
    p_namespace   text,
    p_node_id     text,
    p_ip          inet,
    p_pid         integer,
    p_metadata    jsonb DEFAULT '{}'::jsonb,
    p_now         timestamptz DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
    v_current uuid;
BEGIN
    -- FOR SHARE makes a concurrent rotate_epoch wait for this registration (and fence it),
    -- or makes this registration see the rotation and fail: no instance slips through.
    SELECT epoch INTO v_current
      FROM seedcore.cluster_epoch
     WHERE fenced_at IS NULL
       FOR SHARE;
    IF p_epoch IS NULL OR p_epoch IS DISTINCT FROM v_current THEN
        RAISE EXCEPTION 'cluster epoch % is not the current epoch', p_epoch
            USING ERRCODE = 'SC001',
                  HINT = 'read seedcore.current_epoch() and register again';
    END IF;

    INSERT INTO seedcore.registry_instance AS i
        (instance_id, logical_id, cluster_epoch, status, actor_name, namespace, node_id,
         ip_address, pid, started_at, stopped_at, last_heartbeat, metadata)
    VALUES
        (p_instance_id, p_logical_id, p_epoch, 'starting', p_actor_name, p_namespace,
         p_node_id, p_ip, p_pid, v_now, NULL, v_now, coalesce(p_metadata, '{}'::jsonb))
    ON CONFLICT (instance_id) DO UPDATE SET
        logical_id     = EXCLUDED.logical_id,
        cluster_epoch  = EXCLUDED.cluster_epoch,
        actor_name     = EXCLUDED.actor_name,
        namespace      = EXCLUDED.namespace,
        node_id        = EXCLUDED.node_id,
        ip_address     = EXCLUDED.ip_address,
        pid            = EXCLUDED.pid,
        metadata       = EXCLUDED.metadata,
        last_heartbeat = EXCLUDED.last_heartbeat,
        -- A dead (or other-epoch) instance is revived as starting; a live one keeps its
        -- status, so registering twice is harmless.
        status     = CASE WHEN i.status = 'dead' OR i.cluster_epoch <> EXCLUDED.cluster_epoch
                          THEN 'starting' ELSE i.status END,
        started_at = CASE WHEN i.status = 'dead' OR i.cluster_epoch <> EXCLUDED.cluster_epoch
                          THEN EXCLUDED.started_at ELSE i.started_at END,
        stopped_at = NULL;
END
$$;

COMMENT ON FUNCTION seedcore.register_instance(uuid, text, uuid, text, text, text, inet, integer, jsonb, timestamptz) IS
    'Registers (or re-registers) an instance as starting under the current epoch. '
    'Idempotent: a live instance keeps its status; a dead one of the current epoch is revived. '
    'Raises SC001 when p_epoch is not the current epoch. p_now injects the clock.';

CREATE FUNCTION seedcore.beat_many(
    p_instance_ids uuid[],
    p_epoch        uuid,
    p_now          timestamptz DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_accepted integer;
BEGIN
    -- Hot path: one index probe for the epoch, one UPDATE by primary key, no NOTIFY, no
    -- trigger. last_heartbeat is in no index, so the UPDATE is HOT (see 0004).
    IF NOT EXISTS (SELECT 1 FROM seedcore.cluster_epoch
                    WHERE epoch = p_epoch AND fenced_at IS NULL) THEN
        RAISE EXCEPTION 'cluster epoch % is fenced or unknown', p_epoch
            USING ERRCODE = 'SC001',
                  HINT = 'this deployment generation was replaced; stop beating';
    END IF;
    -- status <> 'dead' is re-checked on the newest row version when a concurrent
    -- rotate/expire/deregister got there first, so a beat never revives the dead.
    UPDATE seedcore.registry_instance
       SET last_heartbeat = coalesce(p_now, now()),
           status = CASE WHEN status = 'starting' THEN 'alive' ELSE status END
     WHERE instance_id = ANY (p_instance_ids)
       AND cluster_epoch = p_epoch
       AND status <> 'dead';
    GET DIAGNOSTICS v_accepted = ROW_COUNT;
    RETURN v_accepted;
END
$$;

COMMENT ON FUNCTION seedcore.beat_many(uuid[], uuid, timestamptz) IS
    'Heartbeat for many instances in one call: refreshes last_heartbeat and turns starting '
    'into alive. Returns how many were accepted; unknown, dead or other-epoch ids are not '
    'counted and not revived. Raises SC001 when p_epoch is fenced. p_now injects the clock.';

CREATE FUNCTION seedcore.beat(
    p_instance_id uuid,
    p_epoch       uuid,
    p_now         timestamptz DEFAULT NULL
)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT seedcore.beat_many(ARRAY[p_instance_id], p_epoch, p_now) = 1
$$;

COMMENT ON FUNCTION seedcore.beat(uuid, uuid, timestamptz) IS
    'Heartbeat for one instance; true when accepted, false for an unknown or dead instance. '
    'Raises SC001 when p_epoch is fenced. Prefer beat_many for many instances.';

CREATE FUNCTION seedcore.set_instance_status(
    p_instance_id uuid,
    p_status      text,
    p_now         timestamptz DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
    v_row seedcore.registry_instance%ROWTYPE;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('starting', 'alive', 'draining', 'dead') THEN
        RAISE EXCEPTION 'invalid instance status %', coalesce(quote_literal(p_status), 'NULL')
            USING ERRCODE = 'SC003',
                  HINT = 'use one of starting, alive, draining, dead';
    END IF;
    SELECT * INTO v_row FROM seedcore.registry_instance
     WHERE instance_id = p_instance_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown instance %', p_instance_id USING ERRCODE = 'SC002';
    END IF;
    IF p_status <> 'dead' AND v_row.cluster_epoch IS DISTINCT FROM seedcore.current_epoch() THEN
        RAISE EXCEPTION 'instance % belongs to fenced epoch %', p_instance_id, v_row.cluster_epoch
            USING ERRCODE = 'SC001';
    END IF;
    UPDATE seedcore.registry_instance
       SET status = p_status,
           stopped_at = CASE WHEN p_status = 'dead' THEN coalesce(stopped_at, v_now) END,
           last_heartbeat = CASE WHEN v_row.status = 'dead' AND p_status <> 'dead'
                                 THEN v_now ELSE last_heartbeat END
     WHERE instance_id = p_instance_id;
END
$$;

COMMENT ON FUNCTION seedcore.set_instance_status(uuid, text, timestamptz) IS
    'Sets an instance''s status (starting, alive, draining, dead). Raises SC003 for any other '
    'status, SC002 for an unknown instance, SC001 when reviving an instance of a fenced epoch.';

CREATE FUNCTION seedcore.deregister_instance(
    p_instance_id uuid,
    p_now         timestamptz DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE seedcore.registry_instance
       SET status = 'dead', stopped_at = coalesce(stopped_at, coalesce(p_now, now()))
     WHERE instance_id = p_instance_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown instance %', p_instance_id USING ERRCODE = 'SC002';
    END IF;
END
$$;

COMMENT ON FUNCTION seedcore.deregister_instance(uuid, timestamptz) IS
    'Marks an instance dead on a clean shutdown (the row stays for audit; see '
    'purge_dead_instances). Idempotent for a known instance; raises SC002 for an unknown one.';
