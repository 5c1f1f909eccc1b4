-- Least-privilege roles. Roles are cluster-wide while this migration runs once per
-- database, so creation is idempotent and tolerates a concurrent migrator in another
-- database. Both roles are NOLOGIN: grant them to the login roles of a deployment
-- (GRANT seedcore_runtime TO my_app_login).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'seedcore_runtime') THEN
        BEGIN
            CREATE ROLE seedcore_runtime NOLOGIN;
            COMMENT ON ROLE seedcore_runtime IS
                'seedcore_thin runtime: EXECUTE on the registry functions, SELECT on the views, '
                'no direct table access.';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migrator created it first
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'seedcore_bi') THEN
        BEGIN
            CREATE ROLE seedcore_bi NOLOGIN;
            COMMENT ON ROLE seedcore_bi IS
                'BI readers: SELECT on the seedcore views only.';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA seedcore FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA seedcore FROM PUBLIC;

GRANT USAGE ON SCHEMA seedcore TO seedcore_runtime, seedcore_bi;

-- The runtime calls the API functions (SECURITY DEFINER: they write the tables for it) and
-- reads the views. configure_registry stays with the DBAs.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA seedcore TO seedcore_runtime;
REVOKE EXECUTE ON FUNCTION seedcore.configure_registry(interval, numeric, integer)
    FROM seedcore_runtime;
GRANT SELECT ON seedcore.active_instance, seedcore.active_instances, seedcore.instance_health
    TO seedcore_runtime, seedcore_bi;
