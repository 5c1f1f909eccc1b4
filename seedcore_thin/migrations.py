"""Applies the versioned PL/pgSQL files of ``sql/migrations`` to a PostgreSQL database.

Each file ``NNNN_description.sql`` runs in its own transaction together with its row in
``seedcore.schema_migrations``, so a crash leaves either both or neither. A session
advisory lock makes two migrators of one database safe: the second waits, then finds
nothing left to do. An applied file whose checksum changed is refused, as is a database
that knows migrations this code does not (the code is older than the database).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from seedcore_thin.errors import MigrationError
from seedcore_thin.queries import sql, sql_dir

MIGRATION_NAME_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")


@dataclass(frozen=True)
class MigrationFile:
    """One migration file on disk."""

    version: int
    name: str
    path: Path
    checksum: str

    @property
    def filename(self) -> str:
        return self.path.name


def default_directory() -> Path:
    return sql_dir() / "migrations"


def list_migrations(directory: Path | None = None) -> list[MigrationFile]:
    """The migration files in version order; misnamed or duplicate versions are errors."""
    folder = directory or default_directory()
    if not folder.is_dir():
        raise MigrationError(f"migration directory {folder} does not exist")
    found: dict[int, MigrationFile] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        match = MIGRATION_NAME_RE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named NNNN_lower_snake_description.sql"
            )
        version = int(match.group("version"))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version:04d} is also used by {found[version].filename}"
            )
        data = path.read_bytes()
        found[version] = MigrationFile(
            version, match.group("name"), path, hashlib.sha256(data).hexdigest()
        )
    return [found[v] for v in sorted(found)]


def _pending(conn: psycopg.Connection, files: list[MigrationFile]) -> list[MigrationFile]:
    """Compare the files with what the database recorded; raise on any divergence."""
    applied = {row[0]: (row[1], row[2]) for row in conn.execute(sql("migrations_applied"))}
    known = {f.version for f in files}
    unknown = sorted(set(applied) - known)
    if unknown:
        names = ", ".join(f"{v:04d}_{applied[v][0]}" for v in unknown)
        raise MigrationError(
            f"the database has migrations this code does not know ({names}): "
            "the code is older than the database"
        )
    pending = []
    for f in files:
        if f.version not in applied:
            pending.append(f)
            continue
        name, checksum = applied[f.version]
        if checksum != f.checksum:
            raise MigrationError(
                f"{f.filename} was changed after it was applied "
                f"(recorded sha256 {checksum[:12]}..., file {f.checksum[:12]}...): "
                "add a new migration instead of editing an applied one"
            )
        if name != f.name:
            raise MigrationError(f"{f.filename}: version {f.version:04d} was applied as {name!r}")
    return pending


def migrate_postgres(
    dsn: str, *, directory: Path | None = None, dry_run: bool = False
) -> list[str]:
    """Apply pending migrations; return their file names (with ``dry_run``: list them only)."""
    files = list_migrations(directory)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise MigrationError(f"cannot connect to PostgreSQL: {exc}") from exc
    with conn:
        conn.execute(sql("migrations_lock"))
        try:
            if dry_run:
                # Look without touching: even the bookkeeping table is rolled back.
                with conn.transaction(force_rollback=True):
                    conn.execute(sql("migrations_bootstrap"))
                    return [f.filename for f in _pending(conn, files)]
            conn.execute(sql("migrations_bootstrap"))
            pending = _pending(conn, files)
            done = []
            for f in pending:
                try:
                    with conn.transaction():
                        conn.execute(f.path.read_bytes())
                        conn.execute(sql("migrations_record"), (f.version, f.name, f.checksum))
                except psycopg.Error as exc:
                    raise MigrationError(f"{f.filename} failed: {exc}") from exc
                done.append(f.filename)
            return done
        finally:
            if not conn.closed:
                conn.execute(sql("migrations_unlock"))
