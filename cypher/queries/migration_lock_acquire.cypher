// migration_lock_acquire: take the migration lock, or learn who holds it.
// params: $owner STRING, $stale_after_ms INTEGER (a lock older than this is taken over)
// returns: owner (the holder after this call; equals $owner when we got it), acquired_at
MERGE (l:__SeedcoreMigrationLock {id: 'graph'})
  ON CREATE SET l.owner = $owner, l.acquired_at = timestamp()
WITH l, (l.owner = $owner OR l.acquired_at < timestamp() - $stale_after_ms) AS ours
SET l.owner = CASE WHEN ours THEN $owner ELSE l.owner END,
    l.acquired_at = CASE WHEN ours THEN timestamp() ELSE l.acquired_at END
RETURN l.owner AS owner, l.acquired_at AS acquired_at
