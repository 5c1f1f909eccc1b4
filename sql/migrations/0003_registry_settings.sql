-- Registry settings: one row that DBAs tune with seedcore.configure_registry().

CREATE TABLE seedcore.registry_settings (
    singleton                      boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    stale_window                   interval NOT NULL DEFAULT interval '15 seconds'
        CHECK (stale_window > interval '0'),
    self_preservation_share        numeric  NOT NULL DEFAULT 0.5
        CHECK (self_preservation_share > 0 AND self_preservation_share <= 1),
    self_preservation_min_instances integer NOT NULL DEFAULT 3
        CHECK (self_preservation_min_instances >= 0)
);

INSERT INTO seedcore.registry_settings DEFAULT VALUES;

COMMENT ON TABLE seedcore.registry_settings IS
    'The registry''s tunables, a single row. Change them with seedcore.configure_registry().';
COMMENT ON COLUMN seedcore.registry_settings.singleton IS 'Always true: keeps the table to one row.';
COMMENT ON COLUMN seedcore.registry_settings.stale_window IS
    'An instance whose last heartbeat is older than this is stale: absent from the active '
    'views and expired by the next expire pass (default 15 s, three missed 5 s beats).';
COMMENT ON COLUMN seedcore.registry_settings.self_preservation_share IS
    'Self-preservation: when more than this share of the live instances would expire in one '
    'pass, the pass expires none (a registry or network outage must not wipe the fleet).';
COMMENT ON COLUMN seedcore.registry_settings.self_preservation_min_instances IS
    'Self-preservation only applies from this many live instances on; a fleet this small '
    'cannot tell an outage from a crash, and its dead members must still expire.';
