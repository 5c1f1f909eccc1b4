// V0003: indexes for agent filters that are not unique keys (routing asks for GPUs; fleets
// are listed per namespace). Neo4j syntax; FalkorDB gets the same range indexes.
CREATE INDEX agent_num_gpus IF NOT EXISTS FOR (n:Agent) ON (n.num_gpus);

CREATE INDEX agent_namespace IF NOT EXISTS FOR (n:Agent) ON (n.namespace);
