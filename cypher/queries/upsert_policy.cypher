// upsert_policy: create or change one Policy (what it forbids), then bump the version.
// params: $policy_id STRING, $kind STRING, $description STRING, $forbids LIST<STRING>
// returns: policy_id, version (the new desired-state version)
// A policy forbids capabilities; routing refuses a task that requires any of them on an
// agent governed by the policy, directly or through its organ.
MERGE (p:Policy {id: $policy_id})
SET p.kind = $kind, p.description = $description, p.forbids = $forbids,
    p.updated_at = timestamp()
WITH p
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + 1, d.updated_at = timestamp()
RETURN p.id AS policy_id, d.version AS version
