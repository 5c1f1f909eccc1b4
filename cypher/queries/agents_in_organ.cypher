// agents_in_organ: the agents that belong to one organ, by id.
// params: $organ_id STRING
// returns: agent_id, name, num_cpus, num_gpus
MATCH (a:Agent)-[:MEMBER_OF]->(o:Organ {id: $organ_id})
RETURN a.id AS agent_id, a.name AS name, a.num_cpus AS num_cpus, a.num_gpus AS num_gpus
ORDER BY agent_id
