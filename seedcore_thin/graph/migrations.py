"""The graph backend of the migrator: ``cypher/migrations/VNNNN__description.cypher``.

As neo4j-migrations does, the history lives in the graph itself: a chain
``(:__SeedcoreMigration {version: 'BASELINE'})-[:MIGRATED_TO]->(:__SeedcoreMigration {version:
'0001', checksum, ...})-[:MIGRATED_TO]->...``. A lock node (``:__SeedcoreMigrationLock``)
keeps two migrators apart; a lock older than ``stale_after_s`` is taken over (a crashed
migrator). Listing, checksums and the refusal rules are the shared migrator's
(:mod:`seedcore_thin.migrations`).

Statements of one file run one by one (Neo4j cannot mix schema and data writes in one
transaction; FalkorDB runs one statement per query), and the history node is written after
the last one. Migrations must therefore be idempotent (``IF NOT EXISTS``, ``MERGE``), so a
crash half-way is repaired by running again.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from seedcore_thin.errors import GraphQueryError, MigrationError
from seedcore_thin.graph import CypherExecutor, GraphClient
from seedcore_thin.graph.schema import split_statements
from seedcore_thin.migrations import Convention, Migration, migrate
from seedcore_thin.queries import cypher_dir

CYPHER_NAMES = Convention("V", "__", ".cypher")
BASELINE = "BASELINE"


def list_graph_migrations(directory: Path | None = None) -> list[Migration]:
    return CYPHER_NAMES.list(directory or cypher_dir() / "migrations")


class _Graph:
    target = "graph"
    failures: tuple[type[Exception], ...] = (GraphQueryError,)

    def __init__(self, client: CypherExecutor, owner: str) -> None:
        self.client = client
        self.owner = owner
        self.last = BASELINE

    def applied(self) -> dict[int, tuple[str, str]]:
        rows = self.client.run("migration_history")
        self.last = rows[-1]["version"] if rows else BASELINE
        return {int(r["version"]): (r["description"], r["checksum"]) for r in rows}

    def apply(self, migration: Migration) -> None:
        for statement in split_statements(migration.path.read_text(encoding="utf-8")):
            self.client.execute_statement(statement)
        version = f"{migration.version:04d}"
        self.client.run(
            "migration_record",
            previous_version=self.last,
            version=version,
            description=migration.description,
            checksum=migration.checksum,
            installed_by=self.owner,
        )
        self.last = version


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
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    backend = _Graph(client, owner)
    if dry_run:
        return [f.name for f in migrate(backend, files, CYPHER_NAMES, dry_run=True)]
    lock = client.run(
        "migration_lock_acquire", owner=owner, stale_after_ms=int(stale_after_s * 1000)
    )
    holder = lock[0]["owner"] if lock else None
    if holder != owner:
        raise MigrationError(f"graph migrations are locked by {holder}; try again later")
    try:
        return [f.name for f in migrate(backend, files, CYPHER_NAMES, dry_run=False)]
    finally:
        client.run("migration_lock_release", owner=owner)
