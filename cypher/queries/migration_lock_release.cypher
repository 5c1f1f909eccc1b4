// migration_lock_release: drop the migration lock if (and only if) we hold it.
// params: $owner STRING
// returns: released (integer: 1 or 0)
OPTIONAL MATCH (l:__SeedcoreMigrationLock {id: 'graph'})
WHERE l.owner = $owner
DETACH DELETE l
RETURN count(l) AS released
