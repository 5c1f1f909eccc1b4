// list_policies: every Policy with what it forbids, by id.
// params: none
// returns: policy_id, kind, description, forbids (list)
// Which organs and agents a policy governs is in list_organ_specs and list_agent_specs.
MATCH (p:Policy)
RETURN p.id AS policy_id, p.kind AS kind, p.description AS description,
       coalesce(p.forbids, []) AS forbids
ORDER BY policy_id
