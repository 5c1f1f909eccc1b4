"""The PostgreSQL migration runner: naming, order, checksums, concurrency, dry run."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest

from seedcore_thin.errors import MigrationError
from seedcore_thin.migrations import (
    list_migrations,
    migrate_postgres,
)
from seedcore_thin.queries import sql_dir
from seedcore_thin.registry import Registry

ALL_FILES = [f.path.name for f in list_migrations()]


def applied(dsn: str) -> list[tuple[int, str]]:
    with Registry(dsn) as registry:
        return [(row["version"], row["name"]) for row in registry.call("migrations_applied")]


def copy_migrations(target: Path, count: int | None = None) -> Path:
    target.mkdir()
    for f in list_migrations()[:count]:
        shutil.copy(f.path, target / f.path.name)
    return target


def test_files_are_named_and_ordered() -> None:
    names = sorted(p.name for p in (sql_dir() / "migrations").iterdir())
    assert names, "sql/migrations is empty"
    assert all(re.fullmatch(r"\d{4}_[a-z0-9]+(_[a-z0-9]+)*\.sql", n) for n in names), names
    versions = [int(n[:4]) for n in names]
    assert versions == sorted(set(versions)), "versions are unique and increasing"
    assert names == ALL_FILES
    registry = [n for n in names if int(n[:4]) < 10]
    assert registry[0].startswith("0001_") and len(registry) == 9


def test_each_migration_is_one_transaction_and_documented() -> None:
    for f in list_migrations():
        text = f.path.read_text(encoding="utf-8")
        assert text.lstrip().startswith("--"), f"{f.path.name} starts with a comment saying why"
        assert not re.search(r"^\s*(BEGIN|COMMIT)\s*;", text, re.I | re.M), (
            f"{f.path.name}: the runner owns the transaction"
        )


def test_misnamed_and_duplicate_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="named"):
        list_migrations(bad)
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "0001_a.sql").write_text("SELECT 1;")
    (dup / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="also used"):
        list_migrations(dup)


def test_dry_run_lists_pending_and_changes_nothing(pg_empty_dsn: str) -> None:
    assert migrate_postgres(pg_empty_dsn, dry_run=True) == ALL_FILES
    assert migrate_postgres(pg_empty_dsn, dry_run=True) == ALL_FILES, "dry run applied nothing"
    assert migrate_postgres(pg_empty_dsn) == ALL_FILES
    assert migrate_postgres(pg_empty_dsn, dry_run=True) == []
    assert migrate_postgres(pg_empty_dsn) == []
    assert [v for v, _ in applied(pg_empty_dsn)] == [int(n[:4]) for n in ALL_FILES]


def test_changed_checksum_is_detected(pg_empty_dsn: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", count=4)
    assert len(migrate_postgres(pg_empty_dsn, directory=folder)) == 4
    target = folder / ALL_FILES[1]
    target.write_text(target.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate_postgres(pg_empty_dsn, directory=folder)
    with pytest.raises(MigrationError, match="changed"):
        migrate_postgres(pg_empty_dsn, directory=folder, dry_run=True)


def test_code_older_than_database_is_refused(pg_empty_dsn: str, tmp_path: Path) -> None:
    migrate_postgres(pg_empty_dsn, directory=copy_migrations(tmp_path / "all"))
    with pytest.raises(MigrationError, match="older than the database"):
        migrate_postgres(pg_empty_dsn, directory=copy_migrations(tmp_path / "few", count=2))


def test_failed_migration_rolls_back_alone(pg_empty_dsn: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", count=2)
    (folder / "0003_broken.sql").write_text(
        "CREATE TABLE seedcore.half_done (x int);\nSELECT no_such_function();\n"
    )
    with pytest.raises(MigrationError, match=r"0003_broken\.sql failed"):
        migrate_postgres(pg_empty_dsn, directory=folder)
    assert [v for v, _ in applied(pg_empty_dsn)] == [1, 2], "earlier files stay applied"
    (folder / "0003_broken.sql").write_text("CREATE TABLE seedcore.half_done (x int);\n")
    assert migrate_postgres(pg_empty_dsn, directory=folder) == ["0003_broken.sql"], (
        "the failed file left nothing behind (its CREATE TABLE was rolled back)"
    )


def test_two_migrators_at_once(pg_empty_dsn: str) -> None:
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate_postgres(pg_empty_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(results, key=len) == [[], ALL_FILES], "one applied everything, one nothing"
    assert len(applied(pg_empty_dsn)) == len(ALL_FILES)
