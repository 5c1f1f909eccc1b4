"""PostgreSQL fixtures: a real server, a migrated template, a fresh database per test.

The server is ``SEEDCORE_TEST_PG_DSN``, else 127.0.0.1:5432 when it answers, else the
embedded stack. One template database is migrated per session; each test gets a copy
(``CREATE DATABASE ... TEMPLATE``, tens of milliseconds) and it is dropped afterwards.
Every database here has a unique ``sc_`` name and only those are ever dropped.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo
from psycopg import sql as pgsql

from seedcore_thin.config import state_dir
from seedcore_thin.embedded.postgres import test_server_dsn, with_database
from seedcore_thin.errors import SeedcoreError
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.queries import NamedQuery, parse_named_sql, sql
from seedcore_thin.registry import Registry

PROBES_FILE = Path(__file__).parent / "sql" / "probes.sql"


def probe(name: str) -> str:
    """A statement from tests/sql/probes.sql (direct table access the roles must refuse)."""
    queries: dict[str, NamedQuery] = parse_named_sql(PROBES_FILE.read_text(encoding="utf-8"))
    return queries[name].text


def unique_db_name(kind: str) -> str:
    return f"sc_{kind}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def create_database(server_dsn: str, name: str, template: str | None = None) -> str:
    """Create database ``name`` (optionally from ``template``); return its DSN."""
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        if template is None:
            stmt = pgsql.SQL(sql("database_create")).format(name=pgsql.Identifier(name))
        else:
            stmt = pgsql.SQL(sql("database_create_from_template")).format(
                name=pgsql.Identifier(name), template=pgsql.Identifier(template)
            )
        conn.execute(stmt)
    return with_database(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    if not name.startswith("sc_"):
        raise ValueError(f"refusing to drop {name!r}: tests drop only their own sc_ databases")
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(pgsql.SQL(sql("database_drop")).format(name=pgsql.Identifier(name)))


def as_role(dsn: str, role: str) -> str:
    """The same DSN, but every session runs ``SET ROLE role`` at login."""
    params = conninfo.conninfo_to_dict(dsn)
    params["options"] = f"-c role={role}"
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """An admin DSN (database ``postgres``) of the test server."""
    try:
        return test_server_dsn(state_dir())
    except SeedcoreError as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")


@pytest.fixture(scope="session")
def pg_template(pg_server_dsn: str) -> Iterator[str]:
    """Name of a database migrated once per session, the template of every ``pg_dsn``."""
    name = unique_db_name("tmpl")
    dsn = create_database(pg_server_dsn, name)
    try:
        migrate_postgres(dsn)
        yield name
    finally:
        drop_database(pg_server_dsn, name)


@contextlib.contextmanager
def scratch_database(server_dsn: str, kind: str, template: str | None = None) -> Iterator[str]:
    """A database of our own for the duration of the block; yields its DSN."""
    name = unique_db_name(kind)
    dsn = create_database(server_dsn, name, template=template)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


@pytest.fixture
def pg_dsn(pg_server_dsn: str, pg_template: str) -> Iterator[str]:
    """DSN of a fresh, fully migrated database for this test alone."""
    with scratch_database(pg_server_dsn, "test", template=pg_template) as dsn:
        yield dsn


@pytest.fixture
def pg_empty_dsn(pg_server_dsn: str) -> Iterator[str]:
    """DSN of a fresh database with no migrations applied (for migration tests)."""
    with scratch_database(pg_server_dsn, "empty") as dsn:
        yield dsn


@pytest.fixture
def registry(pg_dsn: str) -> Iterator[Registry]:
    """A :class:`Registry` on this test's own database, closed afterwards."""
    with Registry(pg_dsn) as reg:
        yield reg
