"""The graph backend of the migrator: ``cypher/migrations/VNNNN__description.cypher``.

As in neo4j-migrations, the history is a chain of ``:__SeedcoreMigration`` nodes from
``BASELINE`` in the graph itself, and a lock node keeps two migrators apart. A file's
statements run one by one (Neo4j cannot mix schema and data writes in one transaction,
FalkorDB runs one statement per query), so migrations must be idempotent (``IF NOT EXISTS``,
``MERGE``): a crash half-way is repaired by running again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from seedcore_thin.audit import default_holder
from seedcore_thin.errors import GraphQueryError, MigrationError
from seedcore_thin.graph import CypherExecutor, GraphClient
from seedcore_thin.graph.schema import split_statements
from seedcore_thin.migrations import Convention, Migration, migrate
from seedcore_thin.queries import cypher_dir

CYPHER_NAMES = Convention("V", "__", ".cypher")


def list_graph_migrations(directory: Path | None = None) -> list[Migration]:
    return CYPHER_NAMES.list(directory or cypher_dir() / "migrations")


@dataclass
class _Graph:
    client: CypherExecutor
    owner: str = field(default_factory=default_holder)
    last: str = "BASELINE"  # the version the next history node links from
    target: ClassVar[str] = "graph"
    failures: ClassVar[tuple[type[Exception], ...]] = (GraphQueryError,)

    def applied(self) -> dict[int, tuple[str, str]]:
        rows = self.client.run("migration_history")
        self.last = rows[-1]["version"] if rows else "BASELINE"
        return {int(r["version"]): (r["description"], r["checksum"]) for r in rows}

    def apply(self, m: Migration) -> None:
        for statement in split_statements(m.path.read_text(encoding="utf-8")):
            self.client.execute_statement(statement)
        version = f"{m.version:04d}"
        record = {"description": m.description, "checksum": m.checksum, "installed_by": self.owner}
        self.client.run("migration_record", previous_version=self.last, version=version, **record)
        self.last = version


def migrate_graph(
    client: GraphClient,
    *,
    dry_run: bool = False,
    directory: Path | None = None,
    stale_after_s: float = 600.0,
) -> list[str]:
    """Apply pending graph migrations; returns their names (pending ones when ``dry_run``).
    A lock older than ``stale_after_s`` is a crashed migrator's: it is taken over."""
    files = list_graph_migrations(directory)
    if not isinstance(client, CypherExecutor):
        return []  # it cannot run statements from files: it has no schema to migrate
    backend = _Graph(client)
    if dry_run:
        return [f.path.stem for f in migrate(backend, files, dry_run=True)]
    stale_after_ms = int(stale_after_s * 1000)
    lock = client.run("migration_lock_acquire", owner=backend.owner, stale_after_ms=stale_after_ms)
    holder = lock[0]["owner"] if lock else None
    if holder != backend.owner:
        raise MigrationError(f"graph migrations are locked by {holder}; try again later")
    try:
        return [f.path.stem for f in migrate(backend, files, dry_run=False)]
    finally:
        client.run("migration_lock_release", owner=backend.owner)
