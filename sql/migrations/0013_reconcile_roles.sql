-- Privileges of the reconciler objects, in the style of 0009_roles.sql: the runtime calls the
-- functions (SECURITY DEFINER, so it needs no table privilege) and reads the views it uses;
-- BI readers see the views only. Nobody but the owner writes the tables directly.

REVOKE ALL ON ALL TABLES IN SCHEMA seedcore FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA seedcore FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    seedcore.acquire_lease(text, interval, text, timestamptz),
    seedcore.release_lease(text, text, bigint),
    seedcore.assert_lease(text, bigint, text, timestamptz),
    seedcore.begin_run(text, bigint, jsonb, text, boolean, text, integer, text, timestamptz),
    seedcore.record_action(bigint, text, text, text, text, text, jsonb, integer, timestamptz),
    seedcore.finish_run(bigint, text, timestamptz),
    seedcore.reconcile_backoff(text, interval, interval, timestamptz)
    TO seedcore_runtime;

GRANT SELECT ON seedcore.reconcile_history, seedcore.reconcile_runs, seedcore.reconcile_deployed
    TO seedcore_runtime, seedcore_bi;
