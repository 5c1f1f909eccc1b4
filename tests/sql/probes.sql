-- Statements only the Python tests use (pg_prove runs *.pg, not this file): direct table
-- access that the least-privilege roles must refuse, and fault injection.

-- name: insert_instance_directly
-- Bypass the API: write the table directly (must fail for seedcore_runtime and seedcore_bi).
INSERT INTO seedcore.registry_instance (instance_id, logical_id, cluster_epoch)
VALUES (%s, 'intruder', seedcore.current_epoch());

-- name: select_instances_directly
-- Bypass the views: read the table directly (must fail for seedcore_bi).
SELECT count(*) FROM seedcore.registry_instance;

-- name: count_instances
-- Rows and distinct instance ids in the table (as the owner).
SELECT count(*) AS n_rows, count(DISTINCT instance_id) AS n_ids FROM seedcore.registry_instance;

-- name: status_counts
-- Instances by status, as the owner sees them.
SELECT status, count(*) FROM seedcore.registry_instance GROUP BY status ORDER BY status;

-- name: terminate_other_sessions
-- Kill every other session of this database (simulates a server restart for the pool).
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid();
