"""PostgreSQL fixtures: a real server, a migrated template, a fresh database per test.

The server is ``SEEDCORE_TEST_PG_DSN``, else 127.0.0.1:5432 when it answers, else the
embedded stack. One template database is migrated per session; each test gets a copy
(``CREATE DATABASE ... TEMPLATE``, tens of milliseconds) and it is dropped afterwards.
Every database here has a unique ``sc_`` name and only those are ever dropped.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import conninfo

from seedcore_thin.config import state_dir
from seedcore_thin.errors import SeedcoreError
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.registry import Registry

ADMIN_SQL = Path(__file__).parent / "sql" / "admin.sql"


def admin_registry(dsn: str, **options: Any) -> Registry:
    """A :class:`Registry` that also knows the tests' statements (``tests/sql/admin.sql``)."""
    return Registry(dsn, extra_sql=[ADMIN_SQL], **options)


def as_role(dsn: str, role: str) -> str:
    """The same DSN, but every session runs ``SET ROLE role`` at login."""
    return conninfo.make_conninfo(dsn, options=f"-c role={role}")


def seed_finished_runs(dsn: str, n: int, *, days_ago: float) -> list[int]:
    """``n`` empty, finished reconcile runs started ``days_ago`` (a past lease holder's)."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    with admin_registry(dsn) as reg:
        lease = reg.call(
            "acquire_lease", holder="past", ttl=timedelta(hours=1), name="reconciler", now=at
        )
        runs = []
        for i in range(n):
            run_id = reg.call(
                "begin_run",
                holder="past", term=lease["term"], plan={"create": []}, scope=None,
                strict=False, host="h", pid=1, name="reconciler", now=at + timedelta(minutes=i),
            )  # fmt: skip
            reg.call("finish_run", run_id=run_id, error=None, now=at + timedelta(minutes=i))
            runs.append(int(run_id))
        return runs


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
    """A registry client (with the tests' statements) on this test's own database."""
    with admin_registry(pg_dsn) as reg:
        yield reg


class TcpProxy:
    """A loopback TCP forwarder we can take down and bring back: PostgreSQL 'blinks'."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = 0  # the first up() picks a free one; later ones take it again
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.up()

    def up(self) -> None:
        self._stop.clear()
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        self.port = lst.getsockname()[1]
        lst.listen(16)
        lst.settimeout(0.2)
        self._listener = lst
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for s in self._conns:
            s.close()
        self._conns.clear()

    def _accept(self) -> None:
        assert self._listener is not None
        with self._listener:
            while not self._stop.is_set():
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                server = socket.create_connection(("127.0.0.1", self.target))
                self._conns += [client, server]
                threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()


@pytest.fixture
def pg_proxy_dsn(pg_dsn: str) -> Iterator[tuple[str, TcpProxy]]:
    params = conninfo.conninfo_to_dict(pg_dsn)
    proxy = TcpProxy(int(params.get("port") or 5432))
    params.update(host="127.0.0.1", port=str(proxy.port), connect_timeout="1")
    yield conninfo.make_conninfo(**params), proxy  # type: ignore[arg-type]
    proxy.down()
