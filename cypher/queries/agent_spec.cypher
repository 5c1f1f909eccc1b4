// agent_spec: the Agent $agent_id names, in the parts of list_agent_specs (see there), so
//   seedcore_thin.graph.base.agent_spec_rows merges both the same way.
// params: $agent_id STRING (no rows if no Agent has it)
// returns: part, key, members: as list_agent_specs, for this one agent
// Every part starts at the agent by its id (an index lookup), never at a scan of the fleet.
MATCH (a:Agent {id: $agent_id})
WITH a ORDER BY a.id
RETURN 'agents' AS part, null AS key,
       collect([id(a), a.id, a.name, a.lifetime, a.num_cpus, a.num_gpus, a.memory_mb,
                a.custom_resources_json, a.max_concurrency, a.metadata_json,
                a.placement]) AS members
UNION ALL
MATCH (a:Agent {id: $agent_id})
WHERE a.namespace IS NOT NULL OR a.entrypoint IS NOT NULL OR a.params IS NOT NULL
   OR a.runtime_env IS NOT NULL
RETURN 'optional' AS part, null AS key,
       collect([id(a), a.namespace, a.entrypoint, a.params, a.runtime_env]) AS members
UNION ALL
MATCH (a:Agent {id: $agent_id})-[:MEMBER_OF]->(o:Organ)
RETURN 'organ_ids' AS part, o.id AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent {id: $agent_id})-[:HAS_SKILL]->(s:Skill)
RETURN 'skills' AS part, s.name AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent {id: $agent_id})-[:USES]->(m:Model)
RETURN 'models' AS part, m.name AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent {id: $agent_id})-[:USES_SERVICE]->(svc:Service)
RETURN 'services' AS part, svc.name AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent {id: $agent_id})-[:GOVERNED_BY]->(p:Policy)
RETURN 'policies' AS part, p.id AS key, collect(id(a)) AS members
