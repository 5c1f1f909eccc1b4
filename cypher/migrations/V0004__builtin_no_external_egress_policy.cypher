// V0004: the original design's one named guardrail, built in: an agent governed by
// no_external_egress (directly or through its organ) is never sent a task that requires
// external_network, even when nobody wrote that Policy node.
// The node is claimed only while nobody defined it: new, or bare (no kind, forbids nothing:
// what upsert_agents / upsert_organ create for a policy an agent or organ names). A Policy a
// user wrote (upsert_policy always sets a kind) is left alone, and upsert_policy can still
// change the built-in later. A data migration: plain Cypher on Neo4j and FalkorDB.

// A bare node already routes agents: tell routing caches the policy changes (a new node
// governs nobody yet, so a fresh graph keeps version 0).
MATCH (p:Policy {id: 'no_external_egress'})
WHERE p.kind IS NULL AND size(coalesce(p.forbids, [])) = 0
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + 1, d.updated_at = timestamp();

MERGE (p:Policy {id: 'no_external_egress'})
WITH p
WHERE p.kind IS NULL AND size(coalesce(p.forbids, [])) = 0
SET p.kind = 'network',
    p.description = 'Built in: no calls outside the private network.',
    p.forbids = ['external_network'];
