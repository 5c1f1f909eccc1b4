// V0001: the unique key of every node kind in the desired-state graph.
// Neo4j 5 syntax, run as written on Neo4j. On FalkorDB (no CREATE CONSTRAINT) the backend
// turns each statement into a range index plus GRAPH.CONSTRAINT CREATE ... UNIQUE; this is
// the only kind of statement a backend adapts (see docs/graph-model.md, "Migrations").
// A unique constraint also gives the index that the {id: $x} / {name: $x} lookups use.
CREATE CONSTRAINT agent_id_unique IF NOT EXISTS
FOR (n:Agent) REQUIRE n.id IS UNIQUE;

CREATE CONSTRAINT organ_id_unique IF NOT EXISTS
FOR (n:Organ) REQUIRE n.id IS UNIQUE;

CREATE CONSTRAINT skill_name_unique IF NOT EXISTS
FOR (n:Skill) REQUIRE n.name IS UNIQUE;

CREATE CONSTRAINT model_name_unique IF NOT EXISTS
FOR (n:Model) REQUIRE n.name IS UNIQUE;

CREATE CONSTRAINT policy_id_unique IF NOT EXISTS
FOR (n:Policy) REQUIRE n.id IS UNIQUE;

CREATE CONSTRAINT service_name_unique IF NOT EXISTS
FOR (n:Service) REQUIRE n.name IS UNIQUE;

CREATE CONSTRAINT desired_state_id_unique IF NOT EXISTS
FOR (n:DesiredState) REQUIRE n.id IS UNIQUE;
