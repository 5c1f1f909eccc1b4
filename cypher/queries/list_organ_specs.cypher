// list_organ_specs: every Organ with the skills it provides, services it uses, policies over it.
// params: none
// returns: organ_id, provides_skills (list), uses_services (list),
//          governed_by_policies (list)
MATCH (o:Organ)
OPTIONAL MATCH (o)-[:PROVIDES]->(s:Skill)
WITH o, collect(DISTINCT s.name) AS provides_skills
OPTIONAL MATCH (o)-[:USES_SERVICE]->(svc:Service)
WITH o, provides_skills, collect(DISTINCT svc.name) AS uses_services
OPTIONAL MATCH (o)-[:GOVERNED_BY]->(p:Policy)
WITH o, provides_skills, uses_services, collect(DISTINCT p.id) AS governed_by_policies
RETURN o.id AS organ_id, provides_skills, uses_services, governed_by_policies
ORDER BY organ_id
