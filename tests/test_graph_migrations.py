"""Graph migrations on a real FalkorDB: history chain, idempotence, checksums, lock."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedcore_thin.errors import GraphQueryError, MigrationError
from seedcore_thin.graph import MockGraphClient, load_cypher_file, upsert_agent, upsert_specs
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import (
    list_graph_migrations,
    migrate_graph,
)
from seedcore_thin.graph.schema import SchemaChange, parse_schema_statement
from seedcore_thin.queries import cypher_dir
from seedcore_thin.specs import AgentSpec, PolicySpec

ALL = [m.path.stem for m in list_graph_migrations()]


@pytest.fixture
def empty_graph(falkordb_server: str) -> Iterator[FalkorDBGraphClient]:
    """A graph that has never been migrated."""
    client = FalkorDBGraphClient(f"{falkordb_server}/test_{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_graph()
    client.close()


@pytest.fixture
def migration_dir(tmp_path: Path) -> Path:
    """A copy of cypher/migrations that a test may edit."""
    target = tmp_path / "migrations"
    shutil.copytree(cypher_dir() / "migrations", target)
    return target


def test_file_names_follow_the_convention() -> None:
    assert ALL[0] == "V0001__unique_keys"
    versions = [m.version for m in list_graph_migrations()]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_migrate_applies_all_then_nothing(empty_graph: FalkorDBGraphClient) -> None:
    assert migrate_graph(empty_graph, dry_run=True) == ALL
    assert empty_graph.run("migration_history") == [], "a dry run writes nothing"
    assert migrate_graph(empty_graph) == ALL
    history = empty_graph.run("migration_history")
    assert [f"V{r['version']}__{r['description']}" for r in history] == ALL
    assert all(len(r["checksum"]) == 64 for r in history)
    assert migrate_graph(empty_graph) == []
    assert migrate_graph(empty_graph, dry_run=True) == []
    assert len(empty_graph.run("migration_history")) == len(ALL), "running twice changes nothing"
    assert empty_graph.version() == 0
    constraints = {
        (c["label"], tuple(c["properties"]), c["status"])
        for c in empty_graph._graph.list_constraints()
    }
    for label, prop in [
        ("Agent", "id"),
        ("Organ", "id"),
        ("Skill", "name"),
        ("Model", "name"),
        ("Policy", "id"),
    ]:
        assert (label, (prop,), "OPERATIONAL") in constraints


def test_a_changed_applied_file_is_refused(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    migrate_graph(empty_graph, directory=migration_dir)
    first = migration_dir / f"{ALL[0]}.cypher"
    first.write_text(first.read_text() + "\n// an innocent-looking edit\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate_graph(empty_graph, directory=migration_dir)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate_graph(empty_graph, directory=migration_dir, dry_run=True)


def test_line_endings_alone_are_not_a_change(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    migrate_graph(empty_graph, directory=migration_dir)
    first = migration_dir / f"{ALL[0]}.cypher"
    first.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))
    assert migrate_graph(empty_graph, directory=migration_dir) == []


def test_new_migration_is_appended_to_the_chain(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    migrate_graph(empty_graph, directory=migration_dir)
    source = cypher_dir() / "migrations" / "V0003__agent_filter_indexes.cypher"
    (migration_dir / "V0099__more_indexes.cypher").write_text(source.read_text())
    assert migrate_graph(empty_graph, directory=migration_dir) == ["V0099__more_indexes"]
    assert empty_graph.run("migration_history")[-1]["version"] == "0099"


def test_code_older_than_the_graph_is_refused(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    migrate_graph(empty_graph, directory=migration_dir)
    (migration_dir / "V0003__agent_filter_indexes.cypher").unlink()
    with pytest.raises(MigrationError, match="older than the graph"):
        migrate_graph(empty_graph, directory=migration_dir)


def test_out_of_order_and_misnamed_files_are_refused(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    late = migration_dir / "V0003__agent_filter_indexes.cypher"
    kept = late.read_text()
    late.unlink()
    (migration_dir / "V0009__later.cypher").write_text(kept)
    migrate_graph(empty_graph, directory=migration_dir)
    (migration_dir / "V0003__forgotten.cypher").write_text(kept)
    with pytest.raises(MigrationError, match="numbered below"):
        migrate_graph(empty_graph, directory=migration_dir)
    (migration_dir / "V0003__forgotten.cypher").unlink()
    (migration_dir / "0005-bad-name.cypher").write_text(kept)
    with pytest.raises(MigrationError, match="VNNNN__"):
        migrate_graph(empty_graph, directory=migration_dir)


def test_a_held_lock_stops_a_second_migrator(empty_graph: FalkorDBGraphClient) -> None:
    held = empty_graph.run("migration_lock_acquire", owner="other-host:1", stale_after_ms=60_000)
    assert held[0]["owner"] == "other-host:1"
    with pytest.raises(MigrationError, match="locked by other-host:1"):
        migrate_graph(empty_graph)
    assert empty_graph.run("migration_history") == []
    # a lock older than stale_after_s is a crashed migrator's: taken over
    assert migrate_graph(empty_graph, stale_after_s=0.0) == ALL
    assert empty_graph.run("migration_lock_release", owner="other-host:1") == [{"released": 0}]


def test_the_lock_is_released_after_a_failed_migration(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    (migration_dir / "V0009__broken.cypher").write_text("MATCH (n RETURN n;\n")
    with pytest.raises(MigrationError, match=r"V0009__broken\.cypher failed"):
        migrate_graph(empty_graph, directory=migration_dir)
    applied = [r["version"] for r in empty_graph.run("migration_history")]
    assert applied == [f"{m.version:04d}" for m in list_graph_migrations()]
    (migration_dir / "V0009__broken.cypher").write_text("MATCH (n) RETURN count(n) AS n;\n")
    assert migrate_graph(empty_graph, directory=migration_dir) == ["V0009__broken"]


def test_unsupported_schema_ddl_is_an_error_not_a_skip(empty_graph: FalkorDBGraphClient) -> None:
    with pytest.raises(GraphQueryError, match="unsupported schema statement"):
        empty_graph.execute_statement("DROP INDEX agent_namespace")


def test_constraint_over_violating_data_fails_loudly(empty_graph: FalkorDBGraphClient) -> None:
    load_cypher_file(empty_graph, cypher_dir() / "fixtures" / "tests" / "invalid_agents.cypher")
    load_cypher_file(empty_graph, cypher_dir() / "fixtures" / "tests" / "invalid_agents.cypher")
    with pytest.raises(MigrationError, match=r"V0001__unique_keys\.cypher failed"):
        migrate_graph(empty_graph)  # the nameless agents were created twice; ids repeat


def test_a_mock_graph_is_born_migrated(falkordb_server: str) -> None:
    with MockGraphClient(uri=falkordb_server) as client:
        assert migrate_graph(client) == []
        history = client.run("migration_history")
        assert [f"V{r['version']}__{r['description']}" for r in history] == ALL


BUILTIN = "no_external_egress"


def _builtin_policy(client: FalkorDBGraphClient) -> dict[str, object]:
    [row] = client.execute_statement(
        "MATCH (p:Policy {id: $id}) RETURN p.kind AS kind, p.forbids AS forbids", {"id": BUILTIN}
    )
    return row


def test_the_builtin_policy_exists_after_migration_without_a_version_bump(
    empty_graph: FalkorDBGraphClient,
) -> None:
    migrate_graph(empty_graph)
    assert _builtin_policy(empty_graph) == {"kind": "network", "forbids": ["external_network"]}
    assert empty_graph.version() == 0


def test_the_migration_claims_a_bare_policy_and_bumps_the_version(
    empty_graph: FalkorDBGraphClient, migration_dir: Path
) -> None:
    """An agent named the policy before V0004: upsert_agents created it bare (forbids [])."""
    for later in migration_dir.glob("V*.cypher"):
        if later.name >= "V0004":
            later.unlink()
    migrate_graph(empty_graph, directory=migration_dir)
    version = upsert_agent(empty_graph, AgentSpec(agent_id="a1", organ_id="o", policies=[BUILTIN]))
    assert _builtin_policy(empty_graph) == {"kind": None, "forbids": []}
    assert migrate_graph(empty_graph)[0] == "V0004__builtin_no_external_egress_policy"
    assert _builtin_policy(empty_graph) == {"kind": "network", "forbids": ["external_network"]}
    assert empty_graph.version() == version + 1, "routing caches must see the change"


def test_a_users_own_policy_of_the_same_id_wins(empty_graph: FalkorDBGraphClient) -> None:
    """Written before the migration, it is kept; written after, it replaces the built-in."""
    mine = PolicySpec(policy_id=BUILTIN, kind="custom", forbids=["pii_export"])
    upsert_specs(empty_graph, policies=[mine])
    migrate_graph(empty_graph)
    assert _builtin_policy(empty_graph) == {"kind": "custom", "forbids": ["pii_export"]}
    upsert_specs(empty_graph, policies=[mine.model_copy(update={"forbids": []})])
    assert _builtin_policy(empty_graph) == {"kind": "custom", "forbids": []}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "CREATE CONSTRAINT a_id IF NOT EXISTS FOR (n:Agent) REQUIRE n.id IS UNIQUE",
            SchemaChange("unique", "node", "Agent", ("id",), True, "a_id"),
        ),
        (
            "CREATE CONSTRAINT FOR (n:Agent) REQUIRE (n.ns, n.id) IS UNIQUE",
            SchemaChange("unique", "node", "Agent", ("ns", "id"), False, None),
        ),
        (
            "create constraint x for (n:Agent) require n.id is not null",
            SchemaChange("not_null", "node", "Agent", ("id",), False, "x"),
        ),
        (
            "CREATE INDEX ix IF NOT EXISTS FOR (n:Agent) ON (n.num_gpus)",
            SchemaChange("index", "node", "Agent", ("num_gpus",), True, "ix"),
        ),
        (
            "CREATE RANGE INDEX FOR ()-[r:USES]-() ON (r.since)",
            SchemaChange("index", "relationship", "USES", ("since",), False, None),
        ),
        ("MATCH (n) RETURN n", None),
        ("MERGE (d:DesiredState {id: 'fleet'})", None),
    ],
)
def test_schema_statement_parsing(statement: str, expected: SchemaChange | None) -> None:
    assert parse_schema_statement(statement) == expected
