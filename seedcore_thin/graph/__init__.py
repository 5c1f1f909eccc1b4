"""The desired state, read from a Cypher graph through one interface whatever the backend.

``connect_graph(uri)`` picks the backend from the URI scheme: ``falkordb+embedded://PATH``
(started on demand; the default), ``falkordb://host:6379/GRAPH``, or Neo4j (``neo4j://``,
``bolt://``, ...). Every backend is a :class:`GraphClient`; specs passed directly
(``MockGraphClient(specs)``) live in a private FalkorDB graph, routed by the same Cypher.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from seedcore_thin.config import default_graph_uri
from seedcore_thin.errors import ConfigError
from seedcore_thin.graph.base import GraphClient as GraphClient
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.falkordb import MockGraphClient as MockGraphClient
from seedcore_thin.graph.schema import split_statements
from seedcore_thin.queries import cypher_dir
from seedcore_thin.specs import AgentSpec, OrganSpec, PolicySpec


def connect_graph(uri: str | None = None) -> GraphClient:
    """A client for ``uri`` (default: ``SEEDCORE_GRAPH_URI``); unreachable -> GraphUnavailable."""
    uri = uri or default_graph_uri()
    scheme = uri.partition("://")[0].lower()
    if scheme in ("falkordb", "falkordb+embedded"):
        return FalkorDBGraphClient(uri)
    from seedcore_thin.graph.neo4j import SCHEMES, Neo4jGraphClient

    if scheme in SCHEMES:
        return Neo4jGraphClient(uri)
    raise ConfigError(
        f"unsupported graph URI scheme {scheme!r} in {uri!r}; use falkordb+embedded://PATH, "
        "falkordb://host:port/graph, neo4j://host:7687 or bolt://host:7687"
    )


def load_cypher_file(client: GraphClient, path: Path) -> int:
    """Run every statement of a ``.cypher`` file in order; returns how many ran."""
    statements = split_statements(Path(path).read_text(encoding="utf-8"))
    for statement in statements:
        client.execute_statement(statement)
    return len(statements)


def load_fixture(client: GraphClient, name: str = "example_fleet") -> int:
    """Load ``cypher/fixtures/NAME.cypher`` (idempotent: fixtures use MERGE)."""
    return load_cypher_file(client, cypher_dir() / "fixtures" / f"{name}.cypher")


def upsert_agent(client: GraphClient, spec: AgentSpec) -> int:
    """Write one spec to the graph; returns the new desired-state version."""
    rows = client.run("upsert_agents", agents=[spec.upsert_params()])
    return int(rows[0]["version"])


def upsert_specs(
    client: GraphClient,
    agents: Iterable[AgentSpec] = (),
    organs: Iterable[OrganSpec] = (),
    policies: Iterable[PolicySpec] = (),
    *,
    batch_size: int = 1000,
) -> int:
    """Write a desired state through the named commands: policies, organs, then agents in
    batches (so a policy's ``forbids`` is in place before an agent names it); returns the
    desired-state version."""
    for policy in policies:
        client.run("upsert_policy", **policy.model_dump())
    for organ in organs:
        client.run("upsert_organ", **organ.model_dump())
    params = [spec.upsert_params() for spec in agents]
    for start in range(0, len(params), batch_size):
        client.run("upsert_agents", agents=params[start : start + batch_size])
    return client.version()


def remove_agent(client: GraphClient, agent_id: str) -> bool:
    """Remove one agent from the desired state; False if it was not there."""
    rows = client.run("remove_agent", agent_id=agent_id)
    return bool(rows[0]["removed"])
