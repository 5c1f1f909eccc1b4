// V0005: agents run code named by `entrypoint` ('package.module:ClassName'), with `params`
// and `runtime_env` as JSON strings (neither database stores a map as a property value).
// The properties need no schema; this index answers the impact question "which agents run
// this code?" (cypher/queries/agents_running_entrypoint.cypher) without a fleet scan.
CREATE INDEX agent_entrypoint IF NOT EXISTS FOR (n:Agent) ON (n.entrypoint);
