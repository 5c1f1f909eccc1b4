-- A change counter for the live set, so a reader (the router) can skip re-reading an
-- unchanged active_instance: read seedcore.live_set_version() first, then the view only
-- when the number moved (in that order: a change committed in between only causes one
-- extra read, never a missed one).
--
-- What moves it: any change of a registry_instance row that can change active_instance
-- other than the clock: a status change (starting -> alive on the first beat, draining,
-- dead by deregister, expiry or epoch fencing, a revival), a changed epoch, agent id,
-- actor name or namespace, and deleting a row that is not dead; and a change of the stale
-- window. At most one bump per transaction (an expiry pass over 10,000 rows bumps once).
--
-- What does not: a steady heartbeat. The row trigger's WHEN clause compares the old and new
-- row in the executor and queues nothing when only last_heartbeat moved, so a beat stays a
-- HOT update with no extra write (0004's "no trigger on this table" was about triggers
-- that fire on every beat; this one never does). Nor does a row that falls silent: the view
-- hides it once its heartbeat is older than the stale window, with no write at all, until
-- expire_stale marks it dead (which bumps). A reader that must notice silence sooner
-- re-reads the view on a slow timer as a backstop.

CREATE TABLE seedcore.live_set_version (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    version    bigint      NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_in xid8
);

INSERT INTO seedcore.live_set_version DEFAULT VALUES;

COMMENT ON TABLE seedcore.live_set_version IS
    'One row: a number that moves whenever active_instance may have changed other than by '
    'the clock. Read it with seedcore.live_set_version().';
COMMENT ON COLUMN seedcore.live_set_version.singleton IS 'Always true: keeps the table to one row.';
COMMENT ON COLUMN seedcore.live_set_version.version IS 'Bumped by one per changing transaction.';
COMMENT ON COLUMN seedcore.live_set_version.changed_at IS 'When it was last bumped.';
COMMENT ON COLUMN seedcore.live_set_version.changed_in IS
    'The transaction that last bumped it: later changes in the same transaction do not.';

CREATE FUNCTION seedcore.bump_live_set_version()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Once per transaction: the WHERE makes every later call in it a read of one row.
    UPDATE seedcore.live_set_version
       SET version = version + 1, changed_at = now(), changed_in = pg_current_xact_id()
     WHERE changed_in IS DISTINCT FROM pg_current_xact_id();
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION seedcore.bump_live_set_version() IS
    'Trigger function: bumps live_set_version once per transaction.';

CREATE TRIGGER registry_instance_live_set_changed
AFTER UPDATE ON seedcore.registry_instance
FOR EACH ROW
WHEN (OLD.status IS DISTINCT FROM NEW.status
      OR OLD.cluster_epoch IS DISTINCT FROM NEW.cluster_epoch
      OR OLD.logical_id IS DISTINCT FROM NEW.logical_id
      OR OLD.actor_name IS DISTINCT FROM NEW.actor_name
      OR OLD.namespace IS DISTINCT FROM NEW.namespace)
EXECUTE FUNCTION seedcore.bump_live_set_version();

COMMENT ON TRIGGER registry_instance_live_set_changed ON seedcore.registry_instance IS
    'Bumps live_set_version when a row changes in a way active_instance shows; never on a '
    'plain heartbeat (only last_heartbeat moves).';

CREATE TRIGGER registry_instance_live_set_removed
AFTER DELETE ON seedcore.registry_instance
FOR EACH ROW
WHEN (OLD.status <> 'dead')
EXECUTE FUNCTION seedcore.bump_live_set_version();

COMMENT ON TRIGGER registry_instance_live_set_removed ON seedcore.registry_instance IS
    'Bumps live_set_version when a row that was not dead is deleted (purging dead rows does not).';

CREATE TRIGGER registry_settings_live_set_changed
AFTER UPDATE ON seedcore.registry_settings
FOR EACH ROW
WHEN (OLD.stale_window IS DISTINCT FROM NEW.stale_window)
EXECUTE FUNCTION seedcore.bump_live_set_version();

COMMENT ON TRIGGER registry_settings_live_set_changed ON seedcore.registry_settings IS
    'A new stale window changes which instances active_instance shows.';

CREATE FUNCTION seedcore.live_set_version()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT version FROM seedcore.live_set_version
$$;

COMMENT ON FUNCTION seedcore.live_set_version() IS
    'The live-set change counter: when it has not moved since a reader last read '
    'active_instance, the view differs only by instances that fell silent and are not '
    'expired yet. Read it before the view.';

CREATE FUNCTION seedcore.active_instance_of(p_agent_ids text[])
RETURNS SETOF seedcore.active_instance
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- The predicate on the DISTINCT ON / PARTITION BY key is pushed below both, so only the
    -- named agents' rows are read (registry_instance_logical_id), not the whole view.
    SELECT * FROM seedcore.active_instance WHERE logical_id = ANY (p_agent_ids)
$$;

COMMENT ON FUNCTION seedcore.active_instance_of(text[]) IS
    'The active_instance rows of the given agents only (a router intersecting its '
    'candidates with the live set reads those, not the fleet).';

REVOKE ALL ON seedcore.live_set_version FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    seedcore.bump_live_set_version(),
    seedcore.live_set_version(),
    seedcore.active_instance_of(text[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    seedcore.live_set_version(),
    seedcore.active_instance_of(text[])
    TO seedcore_runtime;
GRANT EXECUTE ON FUNCTION seedcore.live_set_version() TO seedcore_bi;
