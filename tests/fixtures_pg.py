"""PostgreSQL fixtures: a real server, a migrated template, a fresh database per test.

The server is ``SEEDCORE_TEST_PG_DSN``, else 127.0.0.1:5432 when it answers, else the
embedded stack. One template database is migrated per session; each test gets a copy
(``CREATE DATABASE ... TEMPLATE``, tens of milliseconds) and it is dropped afterwards.
Every database here has a unique ``sc_`` name and only those are ever dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import conninfo

from seedcore_thin.config import state_dir
from seedcore_thin.embedded.postgres import scratch_database, test_server_dsn
from seedcore_thin.errors import SeedcoreError
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.queries import NamedQuery, parse_named_sql
from seedcore_thin.registry import Registry

PROBES_FILE = Path(__file__).parent / "sql" / "probes.sql"


def probe(name: str) -> str:
    """A statement from tests/sql/probes.sql (direct table access the roles must refuse)."""
    queries: dict[str, NamedQuery] = parse_named_sql(PROBES_FILE.read_text(encoding="utf-8"))
    return queries[name].text


def as_role(dsn: str, role: str) -> str:
    """The same DSN, but every session runs ``SET ROLE role`` at login."""
    return conninfo.make_conninfo(dsn, options=f"-c role={role}")


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
    with scratch_database(pg_server_dsn, "tmpl") as dsn:
        migrate_postgres(dsn)
        yield str(conninfo.conninfo_to_dict(dsn)["dbname"])


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
