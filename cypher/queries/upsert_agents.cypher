// upsert_agents: create or replace a batch of Agents and their edges, then bump the
//   desired-state version once (one agent is a batch of one).
// params: $agents LIST<MAP> (each map: agent_id, organ_id, name, namespace, lifetime,
//         num_cpus, num_gpus, memory_mb, custom_resources_json, max_concurrency,
//         metadata_json, entrypoint, params, runtime_env, placement, skills, models,
//         services, policies; see AgentSpec.upsert_params)
// returns: upserted (integer), version (the desired-state version afterwards)
// Missing Organ, Skill, Model, Service and Policy nodes are created; a Policy created here
// forbids nothing until a DBA sets its `forbids` list (the built-in no_external_egress
// exists from migration V0004). Each agent's old MEMBER_OF, HAS_SKILL, USES, USES_SERVICE
// and GOVERNED_BY edges are replaced, so the edges equal the parameters afterwards.
UNWIND $agents AS spec
MERGE (a:Agent {id: spec.agent_id})
SET a.name = spec.name,
    a.namespace = spec.namespace,
    a.lifetime = spec.lifetime,
    a.num_cpus = spec.num_cpus,
    a.num_gpus = spec.num_gpus,
    a.memory_mb = spec.memory_mb,
    a.custom_resources_json = spec.custom_resources_json,
    a.max_concurrency = spec.max_concurrency,
    a.metadata_json = spec.metadata_json,
    a.entrypoint = spec.entrypoint,
    a.params = spec.params,
    a.runtime_env = spec.runtime_env,
    a.placement = spec.placement,
    a.updated_at = timestamp()
WITH a, spec
OPTIONAL MATCH (a)-[old:MEMBER_OF|HAS_SKILL|USES|USES_SERVICE|GOVERNED_BY]->()
DELETE old
WITH a, spec, count(old) AS replaced_edges
MERGE (o:Organ {id: spec.organ_id})
MERGE (a)-[:MEMBER_OF]->(o)
FOREACH (skill_name IN spec.skills |
  MERGE (s:Skill {name: skill_name})
  MERGE (a)-[:HAS_SKILL]->(s))
FOREACH (model_name IN spec.models |
  MERGE (m:Model {name: model_name})
    ON CREATE SET m.deprecated = false
  MERGE (a)-[:USES]->(m))
FOREACH (service_name IN spec.services |
  MERGE (svc:Service {name: service_name})
  MERGE (a)-[:USES_SERVICE]->(svc))
FOREACH (policy_id IN spec.policies |
  MERGE (p:Policy {id: policy_id})
    ON CREATE SET p.forbids = []
  MERGE (a)-[:GOVERNED_BY]->(p))
WITH count(a) AS upserted
MERGE (d:DesiredState {id: 'fleet'})
SET d.version = coalesce(d.version, 0) + CASE WHEN upserted > 0 THEN 1 ELSE 0 END,
    d.updated_at = timestamp()
RETURN upserted, d.version AS version
