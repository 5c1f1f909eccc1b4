"""The graph tests again, against a real Neo4j 5 started by testcontainers.

Skips (with the exact reason) where no Docker engine runs: testcontainers raises
``DockerException`` at once there. Every Cypher file is the one FalkorDB runs; only schema DDL
differs per backend, and on Neo4j it runs as written.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedcore_thin.errors import GraphQueryError
from seedcore_thin.graph import load_cypher_file, load_fixture
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.graph.neo4j import Neo4jGraphClient
from seedcore_thin.graph.schema import split_statements
from seedcore_thin.queries import cypher_dir

# The same test functions, collected here with this module's fixtures (Neo4j instead of
# FalkorDB).
from tests.test_graph_migrations import (  # noqa: F401
    test_a_changed_applied_file_is_refused,
    test_a_held_lock_stops_a_second_migrator,
)
from tests.test_graph_queries import (  # noqa: F401
    test_every_query_file_runs_with_its_declared_parameters,
    test_fixture_loading_is_idempotent,
    test_list_agent_specs_reads_the_whole_example_fleet,
    test_list_organ_specs,
    test_operator_questions,
    test_policies_are_data_with_forbids_lists,
    test_upsert_agent_creates_unknown_policy_that_forbids_nothing,
    test_upsert_agent_replaces_edges_and_round_trips,
    test_version_moves_only_on_desired_state_commands,
)
from tests.test_graph_specs import (  # noqa: F401
    test_generated_fleet_round_trips,
    test_invalid_nodes_are_reported_while_valid_ones_load,
)

pytestmark = pytest.mark.neo4j

NEO4J_IMAGE = "neo4j:5.26-community"
TEST_FIXTURES = cypher_dir() / "fixtures" / "tests"


@pytest.fixture(scope="module")
def neo4j_uri() -> Iterator[str]:
    """A throwaway Neo4j 5 container; its URI carries the credentials."""
    try:
        from docker.errors import DockerException
        from testcontainers.community.neo4j import Neo4jContainer
    except ImportError as exc:
        pytest.skip(f"testcontainers is not installed: {exc}")
    try:
        container = Neo4jContainer(NEO4J_IMAGE, password="seedcore-test")
        container.start()
    except DockerException as exc:
        pytest.skip(f"no Docker engine for a Neo4j container: {exc}")
    try:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(7687)
        yield f"bolt://neo4j:seedcore-test@{host}:{port}"
    finally:
        container.stop()


def _wiped(uri: str) -> Neo4jGraphClient:
    client = Neo4jGraphClient(uri)
    load_cypher_file(client, TEST_FIXTURES / "wipe_test_database.cypher")
    return client


@pytest.fixture
def empty_graph(neo4j_uri: str) -> Iterator[Neo4jGraphClient]:
    """No nodes (constraints from earlier tests may remain: migrations say IF NOT EXISTS)."""
    client = _wiped(neo4j_uri)
    yield client
    client.close()


@pytest.fixture
def graph(empty_graph: Neo4jGraphClient) -> Neo4jGraphClient:
    migrate_graph(empty_graph)
    return empty_graph


@pytest.fixture
def fleet_graph(graph: Neo4jGraphClient) -> Neo4jGraphClient:
    load_fixture(graph)
    return graph


@pytest.fixture
def migration_dir(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(cypher_dir() / "migrations", target)
    return target


def test_unique_keys_are_enforced_on_neo4j(fleet_graph: Neo4jGraphClient) -> None:
    with pytest.raises(GraphQueryError, match="already exists"):
        load_cypher_file(fleet_graph, TEST_FIXTURES / "duplicate_agent.cypher")


def test_a_map_shaped_property_is_refused_by_neo4j(graph: Neo4jGraphClient) -> None:
    with pytest.raises(GraphQueryError, match="Property values can only be of primitive types"):
        load_cypher_file(graph, TEST_FIXTURES / "map_property.cypher")


def test_reads_are_routed_to_readers(fleet_graph: Neo4jGraphClient) -> None:
    """A read-routed transaction refuses writes, which proves reads take the READ route."""
    [write] = split_statements((TEST_FIXTURES / "duplicate_agent.cypher").read_text())
    with pytest.raises(GraphQueryError):
        fleet_graph._execute(write, {}, write=False)
