// list_agent_specs: every Agent with its properties, organ ids, skills, models, services and
//   direct policies, in parts that seedcore_thin.graph.base.agent_spec_rows merges by agent.
// params: none (one agent by id: agent_spec.cypher, an index lookup)
// returns: part (STRING), key, members (LIST): one row per part and key:
//   'agents', null, [[node, id, name, lifetime, num_cpus, num_gpus, memory_mb,
//                     custom_resources_json, max_concurrency, metadata_json, placement], ...]
//   'optional', null, [[node, namespace, entrypoint, params, runtime_env], ...]
//                     (only agents that set at least one of these)
//   'organ_ids' | 'skills' | 'models' | 'services' | 'policies', the organ id, skill, model,
//                     service name or policy id, [node, ...] (the agents related to it)
//   'agents' is ordered by id (as ORDER BY orders any value; a missing id last).
//   node is id(a): the merge key within this one query, as an Agent's id may be missing
//   (id() is deprecated in Neo4j 5, but FalkorDB has no elementId()).
// Why parts: each relationship type is one traversal over the whole fleet, grouped by the
// few organs/skills/models/services/policies it reaches; an OPTIONAL MATCH per agent and
// type cost about 6 us each (2.9 s of FalkorDB time at 100,000 agents), these about 0.5 s
// together. Properties most agents leave unset come apart, as every value returned costs
// the client about 1 us to parse.
// Values come back as stored; seedcore_thin.specs validates them, so one bad node is
// reported without hiding the others. Agents with no edges are in 'agents'; 0 or 2 organs
// show up as 0 or 2 organ_ids.
MATCH (a:Agent)
WITH a ORDER BY a.id
RETURN 'agents' AS part, null AS key,
       collect([id(a), a.id, a.name, a.lifetime, a.num_cpus, a.num_gpus, a.memory_mb,
                a.custom_resources_json, a.max_concurrency, a.metadata_json,
                a.placement]) AS members
UNION ALL
MATCH (a:Agent)
WHERE a.namespace IS NOT NULL OR a.entrypoint IS NOT NULL OR a.params IS NOT NULL
   OR a.runtime_env IS NOT NULL
RETURN 'optional' AS part, null AS key,
       collect([id(a), a.namespace, a.entrypoint, a.params, a.runtime_env]) AS members
UNION ALL
MATCH (a:Agent)-[:MEMBER_OF]->(o:Organ)
RETURN 'organ_ids' AS part, o.id AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent)-[:HAS_SKILL]->(s:Skill)
RETURN 'skills' AS part, s.name AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent)-[:USES]->(m:Model)
RETURN 'models' AS part, m.name AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent)-[:USES_SERVICE]->(svc:Service)
RETURN 'services' AS part, svc.name AS key, collect(id(a)) AS members
UNION ALL
MATCH (a:Agent)-[:GOVERNED_BY]->(p:Policy)
RETURN 'policies' AS part, p.id AS key, collect(id(a)) AS members
