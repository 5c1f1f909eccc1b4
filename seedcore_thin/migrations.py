"""One migrator for ``sql/migrations`` (PostgreSQL) and ``cypher/migrations`` (the graph).

Shared: file names, checksums (line endings normalised: a CRLF checkout is no change) and
the rules refusing a divergence; a backend (PostgreSQL here, the graph's in
:mod:`seedcore_thin.graph.migrations`) applies one file with its history record, locked.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

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

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Convention:
    """How the files of one target are named: PREFIX + NNNN + SEP + lower_snake + SUFFIX."""

    prefix: str
    sep: str
    suffix: str

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(
            rf"^{self.prefix}(?P<version>\d{{4}}){re.escape(self.sep)}"
            rf"(?P<description>[a-z0-9]+(?:_[a-z0-9]+)*){re.escape(self.suffix)}$"
        )

    def list(self, folder: Path) -> list[Migration]:
        """The files in version order; misnamed files and reused versions are errors."""
        if not folder.is_dir():
            raise MigrationError(f"migration directory {folder} does not exist")
        found: dict[int, Migration] = {}
        for path in sorted(folder.glob(f"*{self.suffix}")):
            if (match := self.regex.match(path.name)) is None:
                hint = f"{self.prefix}NNNN{self.sep}lower_snake_description{self.suffix}"
                raise MigrationError(f"{path.name}: migration files here are named {hint}")
            version = int(match["version"])
            if version in found:
                raise MigrationError(
                    f"{path.name}: version {version:04d} is also used by {found[version].filename}"
                )
            checksum = hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
            found[version] = Migration(version, match["description"], path, checksum)
        return [found[v] for v in sorted(found)]


class Backend(Protocol):
    """Where migrations are recorded and applied."""

    target: ClassVar[str]  # "database", "graph": named in the errors
    failures: ClassVar[tuple[type[Exception], ...]]  # what a failed file raises

    def applied(self) -> dict[int, tuple[str, str]]: ...  # version -> (description, checksum)

    def apply(self, migration: Migration) -> None: ...  # run the file and record it


def migrate(backend: Backend, files: list[Migration], *, dry_run: bool) -> list[Migration]:
    """Apply the files not applied yet, in order (``dry_run``: only return them). Refused:
    an applied file whose checksum or name changed, a target that knows versions this code
    does not (the code is older), a new file numbered below one already applied."""
    applied = backend.applied()
    by_version = {f.version: f for f in files}
    if unknown := sorted(set(applied) - set(by_version)):
        names = ", ".join(f"{v:04d} {applied[v][0]}" for v in unknown)
        raise MigrationError(
            f"the {backend.target} has migrations this code does not know ({names}): "
            f"the code is older than the {backend.target}"
        )
    for version, (description, checksum) in sorted(applied.items()):
        f = by_version[version]
        if checksum != f.checksum:
            raise MigrationError(
                f"{f.filename} was changed after it was applied (checksum {checksum[:12]} "
                f"recorded, {f.checksum[:12]} on disk): add a new migration instead"
            )
        if description != f.description:
            raise MigrationError(f"{f.filename}: {version:04d} was applied as {description}")
    todo = [f for f in files if f.version not in applied]
    if todo and applied and todo[0].version < max(applied):
        last = by_version[max(applied)].filename
        raise MigrationError(
            f"{todo[0].filename} is numbered below {last}, which is already applied: "
            "renumber it after the last applied migration"
        )
    if dry_run:
        return todo
    for f in todo:
        try:
            backend.apply(f)
        except backend.failures as exc:
            raise MigrationError(f"{f.filename} failed: {exc}") from exc
    return todo


# ---------------------------------------------------------------------- PostgreSQL
SQL_NAMES = Convention("", "_", ".sql")


def list_migrations(directory: Path | None = None) -> list[Migration]:
    return SQL_NAMES.list(directory or sql_dir() / "migrations")


@dataclass
class _Postgres:
    """A file and its ``schema_migrations`` row commit in one transaction: both or neither."""

    conn: psycopg.Connection
    target: ClassVar[str] = "database"
    failures: ClassVar[tuple[type[Exception], ...]] = (psycopg.Error,)

    def applied(self) -> dict[int, tuple[str, str]]:
        rows = self.conn.execute(sql("migrations_applied")).fetchall()
        return {version: (name, checksum) for version, name, checksum in rows}

    def apply(self, m: Migration) -> None:
        with self.conn.transaction():
            self.conn.execute(m.path.read_bytes())
            record = {"version": m.version, "name": m.description, "checksum": m.checksum}
            self.conn.execute(sql("migrations_record"), record)


def migrate_postgres(
    dsn: str, *, directory: Path | None = None, dry_run: bool = False
) -> list[str]:
    """Apply pending migrations; return their file names (with ``dry_run``: list them only).
    Under a session advisory lock: a second migrator waits, then finds nothing left to do."""
    files = list_migrations(directory)

    def run(conn: psycopg.Connection) -> list[Migration]:
        conn.execute(sql("migrations_lock"))
        try:
            # A dry run looks without touching: even the bookkeeping table is rolled back.
            with conn.transaction(force_rollback=True) if dry_run else contextlib.nullcontext():
                conn.execute(sql("migrations_bootstrap"))
                return migrate(_Postgres(conn), files, dry_run=dry_run)
        finally:
            if not conn.closed:
                conn.execute(sql("migrations_unlock"))

    with Registry(dsn, max_size=1, timeout=5.0) as registry:
        return [f.filename for f in registry.run(run)]
