// agents_using_model: which agents are affected if we deprecate (or remove) this model?
// params: $model_name STRING
// returns: agent_id, organ_id, model_deprecated (boolean)
MATCH (a:Agent)-[:USES]->(m:Model {name: $model_name})
OPTIONAL MATCH (a)-[:MEMBER_OF]->(o:Organ)
RETURN a.id AS agent_id, o.id AS organ_id, coalesce(m.deprecated, false) AS model_deprecated
ORDER BY agent_id
