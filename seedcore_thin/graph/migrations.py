"""Applies ``cypher/migrations/VNNNN__description.cypher`` to a graph, as neo4j-migrations does.

The history lives in the graph itself: a chain
``(:__SeedcoreMigration {version: 'BASELINE'})-[:MIGRATED_TO]->(:__SeedcoreMigration {version:
'0001', checksum, ...})-[:MIGRATED_TO]->...``. A migration whose file changed after it was
applied is refused, as is a graph that knows versions this code does not (the code is older
than the graph) and a new file numbered below one already applied. A lock node
(``:__SeedcoreMigrationLock``) keeps two migrators apart; a lock older than
``stale_after_s`` is taken over (a crashed migrator). Running twice changes nothing.

Statements of one file run one by one (Neo4j cannot mix schema and data writes in one
transaction; FalkorDB runs one statement per query), and the history node is written after
the last one. Migrations must therefore be idempotent (``IF NOT EXISTS``, ``MERGE``), so a
crash half-way is repaired by running again.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from seedcore_thin.errors import GraphQueryError, MigrationError
from seedcore_thin.graph import CypherExecutor, GraphClient
from seedcore_thin.graph.schema import split_statements
from seedcore_thin.queries import cypher_dir

MIGRATION_NAME_RE = re.compile(
    r"^V(?P<version>\d{4})__(?P<description>[a-z0-9]+(?:_[a-z0-9]+)*)\.cypher$"
)
BASELINE = "BASELINE"


@dataclass(frozen=True)
class GraphMigration:
    """One migration file on disk."""

    version: str
    description: str
    path: Path
    checksum: str

    @property
    def name(self) -> str:
        return self.path.stem

    def statements(self) -> list[str]:
        return split_statements(self.path.read_text(encoding="utf-8"))


def default_directory() -> Path:
    return cypher_dir() / "migrations"


def checksum(text: str) -> str:
    """sha256 of the file with line endings normalised (a CRLF checkout is not a change)."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def list_graph_migrations(directory: Path | None = None) -> list[GraphMigration]:
    """Migration files in version order; misnamed files and duplicate versions are errors."""
    folder = directory or default_directory()
    if not folder.is_dir():
        raise MigrationError(f"migration directory {folder} does not exist")
    found: dict[str, GraphMigration] = {}
    for path in sorted(folder.glob("*.cypher")):
        match = MIGRATION_NAME_RE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: graph migrations are named VNNNN__lower_snake_description.cypher"
            )
        version = match.group("version")
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is also {found[version].name}")
        text = path.read_text(encoding="utf-8")
        found[version] = GraphMigration(version, match.group("description"), path, checksum(text))
    return [found[v] for v in sorted(found)]


def _pending(client: GraphClient, files: list[GraphMigration]) -> list[GraphMigration]:
    """Compare files with the graph's history; raise on any divergence."""
    applied = {row["version"]: row for row in client.run("migration_history")}
    by_version = {f.version: f for f in files}
    unknown = sorted(set(applied) - set(by_version))
    if unknown:
        names = ", ".join(f"V{v}__{applied[v]['description']}" for v in unknown)
        raise MigrationError(
            f"the graph has migrations this code does not know ({names}): "
            "the code is older than the graph"
        )
    for version, row in sorted(applied.items()):
        if row["checksum"] != by_version[version].checksum:
            raise MigrationError(
                f"{by_version[version].path.name} changed after it was applied "
                f"(checksum {row['checksum'][:12]} in the graph, "
                f"{by_version[version].checksum[:12]} on disk): write a new migration instead"
            )
    pending = [f for f in files if f.version not in applied]
    if pending and applied and pending[0].version < max(applied):
        raise MigrationError(
            f"{pending[0].path.name} is numbered below V{max(applied)}, which is already "
            "applied: renumber it after the last applied migration"
        )
    return pending


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def migrate_graph(
    client: GraphClient,
    *,
    dry_run: bool = False,
    directory: Path | None = None,
    stale_after_s: float = 600.0,
) -> list[str]:
    """Apply pending graph migrations; returns their names (pending ones when ``dry_run``).

    The in-memory client has no schema: it returns ``[]``.
    """
    files = list_graph_migrations(directory)
    if not isinstance(client, CypherExecutor):
        return []
    if dry_run:
        return [f.name for f in _pending(client, files)]
    owner = _owner()
    lock = client.run(
        "migration_lock_acquire", owner=owner, stale_after_ms=int(stale_after_s * 1000)
    )
    holder = lock[0]["owner"] if lock else None
    if holder != owner:
        raise MigrationError(f"graph migrations are locked by {holder}; try again later")
    applied: list[str] = []
    try:
        pending = _pending(client, files)
        history = client.run("migration_history")
        previous = history[-1]["version"] if history else BASELINE
        for migration in pending:
            for statement in migration.statements():
                try:
                    client.execute_statement(statement)
                except GraphQueryError as exc:
                    raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
            client.run(
                "migration_record",
                previous_version=previous,
                version=migration.version,
                description=migration.description,
                checksum=migration.checksum,
                installed_by=owner,
            )
            previous = migration.version
            applied.append(migration.name)
    finally:
        client.run("migration_lock_release", owner=owner)
    return applied
