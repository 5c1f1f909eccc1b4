"""The graph backend of the migrator: ``cypher/migrations/VNNNN__description.cypher``.

As in neo4j-migrations, the history is a chain of ``:__SeedcoreMigration`` nodes from
``BASELINE`` in the graph itself, and a lock node keeps two migrators apart. A file's
statements run one by one (Neo4j cannot mix schema and data writes in one transaction,
FalkorDB runs one statement per query), so migrations must be idempotent (``IF NOT EXISTS``,
``MERGE``): a crash half-way is repaired by running again.
"""

from __future__ import annotations

from pathlib import Path

from seedcore_thin.audit import default_holder
from seedcore_thin.errors import GraphQueryError, MigrationError
from seedcore_thin.graph import GraphClient, load_cypher_file
from seedcore_thin.migrations import Migration, migration_files, pending
from seedcore_thin.queries import cypher_dir


def list_graph_migrations(directory: Path | None = None) -> list[Migration]:
    return migration_files(directory or cypher_dir() / "migrations", "V", "__", ".cypher")


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
    owner = default_holder()
    if not dry_run:
        stale_after_ms = int(stale_after_s * 1000)
        lock = client.run("migration_lock_acquire", owner=owner, stale_after_ms=stale_after_ms)
        if (holder := lock[0]["owner"] if lock else None) != owner:
            raise MigrationError(f"graph migrations are locked by {holder}; try again later")
    try:
        rows = client.run("migration_history")
        applied = {int(r["version"]): (r["description"], r["checksum"]) for r in rows}
        todo = pending(files, applied, "graph")
        last = rows[-1]["version"] if rows else "BASELINE"  # the next history node links from it
        for m in [] if dry_run else todo:
            version = f"{m.version:04d}"
            record = {"description": m.description, "checksum": m.checksum, "installed_by": owner}
            try:
                load_cypher_file(client, m.path)
                client.run("migration_record", previous_version=last, version=version, **record)
            except GraphQueryError as exc:
                raise MigrationError(f"{m.path.name} failed: {exc}") from exc
            last = version
        return [f.path.stem for f in todo]
    finally:
        if not dry_run:
            client.run("migration_lock_release", owner=owner)
