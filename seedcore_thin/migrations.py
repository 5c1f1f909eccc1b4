"""One migrator for ``sql/migrations`` (PostgreSQL) and ``cypher/migrations`` (the graph).

Shared: file names, checksums (line endings normalised: a CRLF checkout is no change) and
the rules refusing a divergence (:func:`pending`); each target (PostgreSQL here, the graph in
:mod:`seedcore_thin.graph.migrations`) applies a file with its history record, locked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from seedcore_thin.errors import MigrationError
from seedcore_thin.queries import sql, sql_dir
from seedcore_thin.registry import Registry


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    path: Path
    checksum: str


def migration_files(folder: Path, prefix: str, sep: str, suffix: str) -> list[Migration]:
    """The files named PREFIX + NNNN + SEP + lower_snake_description + SUFFIX, in version
    order; misnamed files and reused versions are errors."""
    if not folder.is_dir():
        raise MigrationError(f"migration directory {folder} does not exist")
    name_re = re.compile(
        rf"{prefix}(?P<version>\d{{4}}){re.escape(sep)}"
        rf"(?P<description>[a-z0-9]+(?:_[a-z0-9]+)*){re.escape(suffix)}"
    )
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob(f"*{suffix}")):
        if (match := name_re.fullmatch(path.name)) is None:
            hint = f"{prefix}NNNN{sep}lower_snake_description{suffix}"
            raise MigrationError(f"{path.name}: migration files here are named {hint}")
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version:04d} is also used by {found[version].path.name}"
            )
        checksum = hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
        found[version] = Migration(version, match["description"], path, checksum)
    return [found[v] for v in sorted(found)]


def pending(
    files: list[Migration], applied: dict[int, tuple[str, str]], target: str
) -> list[Migration]:
    """The files not applied yet, in order, given what the ``target`` ("database", "graph")
    recorded (version -> (description, checksum)). Refused: an applied file whose checksum or
    name changed, a target that knows versions this code does not (the code is older), a new
    file numbered below one already applied."""
    by_version = {f.version: f for f in files}
    if unknown := sorted(set(applied) - set(by_version)):
        names = ", ".join(f"{v:04d} {applied[v][0]}" for v in unknown)
        raise MigrationError(
            f"the {target} has migrations this code does not know ({names}): "
            f"the code is older than the {target}"
        )
    for version, (description, checksum) in sorted(applied.items()):
        f = by_version[version]
        if checksum != f.checksum:
            raise MigrationError(
                f"{f.path.name} was changed after it was applied (checksum {checksum[:12]} "
                f"recorded, {f.checksum[:12]} on disk): add a new migration instead"
            )
        if description != f.description:
            raise MigrationError(f"{f.path.name}: {version:04d} was applied as {description}")
    todo = [f for f in files if f.version not in applied]
    if todo and applied and todo[0].version < max(applied):
        last = by_version[max(applied)].path.name
        raise MigrationError(
            f"{todo[0].path.name} is numbered below {last}, which is already applied: "
            "renumber it after the last applied migration"
        )
    return todo


# ---------------------------------------------------------------------- PostgreSQL
def list_migrations(directory: Path | None = None) -> list[Migration]:
    return migration_files(directory or sql_dir() / "migrations", "", "_", ".sql")


def migrate_postgres(
    dsn: str, *, directory: Path | None = None, dry_run: bool = False
) -> list[str]:
    """Apply pending migrations; return their file names (with ``dry_run``: list them only).
    A file and its ``schema_migrations`` row commit in one transaction: both or neither.
    Under a session advisory lock: a second migrator waits, then finds nothing left to do."""
    files = list_migrations(directory)

    def run(conn: psycopg.Connection) -> list[Migration]:
        conn.execute(sql("migrations_lock"))
        try:
            # A dry run looks without touching: even the bookkeeping table is rolled back.
            with conn.transaction(force_rollback=dry_run):
                conn.execute(sql("migrations_bootstrap"))
                rows = conn.execute(sql("migrations_applied")).fetchall()
                todo = pending(files, {v: (name, sha) for v, name, sha in rows}, "database")
            for m in [] if dry_run else todo:
                record = {"version": m.version, "name": m.description, "checksum": m.checksum}
                try:
                    with conn.transaction():
                        conn.execute(m.path.read_bytes())
                        conn.execute(sql("migrations_record"), record)
                except psycopg.Error as exc:
                    raise MigrationError(f"{m.path.name} failed: {exc}") from exc
            return todo
        finally:
            if not conn.closed:
                conn.execute(sql("migrations_unlock"))

    with Registry(dsn, max_size=1, timeout=5.0) as registry:
        return [f.path.name for f in registry.run(run)]
