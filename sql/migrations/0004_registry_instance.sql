-- One row per running (or once running) Ray actor instance.
--
-- Index layout, and why: the heartbeat is the hot path. A beat only rewrites
-- last_heartbeat (and status once, starting -> alive). PostgreSQL can then do a HOT
-- (heap-only tuple) update: the new row version goes on the same page, no index is touched,
-- and vacuum prunes the old version cheaply. That only works when
--   1. no indexed column changes: last_heartbeat is deliberately in NO index (expiry and
--      the active views scan the table; 10,000 rows scan in about a millisecond), and
--   2. the page has room: fillfactor 70 leaves 30 % of each page free for new versions.
-- The remaining indexes are the primary key (beat_many looks rows up by instance_id) and
-- logical_id (routing reads one agent's replicas). No trigger and no NOTIFY on this table:
-- NOTIFY serialises commits and would cap beats at a few hundred per second.

CREATE TABLE seedcore.registry_instance (
    instance_id    uuid        PRIMARY KEY,
    logical_id     text        NOT NULL CHECK (logical_id <> ''),
    cluster_epoch  uuid        NOT NULL REFERENCES seedcore.cluster_epoch (epoch),
    status         text        NOT NULL DEFAULT 'starting'
        CONSTRAINT registry_instance_status_valid
        CHECK (status IN ('starting', 'alive', 'draining', 'dead')),
    actor_name     text,
    namespace      text,
    node_id        text,
    ip_address     inet,
    pid            integer,
    started_at     timestamptz NOT NULL DEFAULT now(),
    stopped_at     timestamptz,
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb
) WITH (fillfactor = 70);

CREATE INDEX registry_instance_logical_id ON seedcore.registry_instance (logical_id);

COMMENT ON TABLE seedcore.registry_instance IS
    'Registered Ray actor instances and their liveness. Written only through the seedcore '
    'functions; read through the views active_instance, active_instances, instance_health.';
COMMENT ON COLUMN seedcore.registry_instance.instance_id IS
    'Unique per actor process incarnation, chosen by the runtime.';
COMMENT ON COLUMN seedcore.registry_instance.logical_id IS
    'The agent id from the graph; several instances (replicas, restarts) share it.';
COMMENT ON COLUMN seedcore.registry_instance.cluster_epoch IS
    'The epoch the instance registered under; instances of fenced epochs are dead.';
COMMENT ON COLUMN seedcore.registry_instance.status IS
    'starting (registered, no beat yet), alive (beating), draining (finishing work, takes no '
    'new tasks), dead (deregistered, expired or fenced).';
COMMENT ON COLUMN seedcore.registry_instance.actor_name IS 'The Ray named-actor name.';
COMMENT ON COLUMN seedcore.registry_instance.namespace IS 'The Ray namespace of the actor.';
COMMENT ON COLUMN seedcore.registry_instance.node_id IS 'The Ray node id hosting the actor.';
COMMENT ON COLUMN seedcore.registry_instance.ip_address IS 'The node''s IP address.';
COMMENT ON COLUMN seedcore.registry_instance.pid IS 'The actor''s worker process id.';
COMMENT ON COLUMN seedcore.registry_instance.started_at IS
    'When this incarnation registered (or was revived).';
COMMENT ON COLUMN seedcore.registry_instance.stopped_at IS 'When it became dead; NULL while not dead.';
COMMENT ON COLUMN seedcore.registry_instance.last_heartbeat IS
    'Last accepted beat (registration counts as one). Not indexed on purpose: see the file.';
COMMENT ON COLUMN seedcore.registry_instance.metadata IS 'Free-form runtime details (json object).';
COMMENT ON INDEX seedcore.registry_instance_logical_id IS 'Finds the replicas of one agent.';
