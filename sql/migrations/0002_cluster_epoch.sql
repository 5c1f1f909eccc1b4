-- The cluster epoch: one uuid per deployment generation, issued by the database. Every
-- instance registers under the current epoch; rotating it fences the whole old generation.

CREATE TABLE seedcore.cluster_epoch (
    epoch      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    started_at timestamptz NOT NULL DEFAULT now(),
    fenced_at  timestamptz,
    CONSTRAINT cluster_epoch_fenced_after_start CHECK (fenced_at IS NULL OR fenced_at >= started_at)
);

-- At most one epoch is current (not fenced); the unique expression index enforces it.
CREATE UNIQUE INDEX cluster_epoch_one_current ON seedcore.cluster_epoch ((fenced_at IS NULL))
    WHERE fenced_at IS NULL;

INSERT INTO seedcore.cluster_epoch DEFAULT VALUES;

COMMENT ON TABLE seedcore.cluster_epoch IS
    'Deployment generations. Exactly one row has fenced_at NULL: the current epoch. Rotate '
    'with seedcore.rotate_epoch(), never by hand.';
COMMENT ON COLUMN seedcore.cluster_epoch.epoch IS 'The epoch id, issued by gen_random_uuid().';
COMMENT ON COLUMN seedcore.cluster_epoch.started_at IS 'When this epoch became current.';
COMMENT ON COLUMN seedcore.cluster_epoch.fenced_at IS
    'When a newer epoch replaced it; NULL for the current epoch.';
COMMENT ON INDEX seedcore.cluster_epoch_one_current IS 'Guarantees a single current epoch.';
