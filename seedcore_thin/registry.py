"""The one PostgreSQL client: a small pool, named calls, one retry policy, typed errors.

All logic lives in the ``seedcore`` PL/pgSQL functions; this module only calls them by name
(``sql/queries.sql``, whose ``-- name: NAME :SHAPE`` header says what a call returns), maps
every SQLSTATE they raise onto :mod:`seedcore_thin.errors` (:data:`ERRORS`), and retries
transient failures inside a time budget. When the database cannot be reached the budget runs
out and :class:`RegistryUnavailable` tells the caller, well within two seconds, to fall back
to Ray's own discovery. The reconciler's lease and audit (``audit.py``) and the migrator use
this same client.
"""

from __future__ import annotations

import json
import json.scanner
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import args_row, dict_row, tuple_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from seedcore_thin.errors import (
    ConfigError,
    FencedEpoch,
    InvalidOutcome,
    InvalidStatus,
    LeaderLockHeld,
    LeaseLost,
    QueryNotFound,
    RegistryUnavailable,
    RunClosed,
    SeedcoreError,
    UnknownInstance,
)
from seedcore_thin.queries import load_sql

log = logging.getLogger(__name__)

T = TypeVar("T")

# One beat_many call per this many ids; bigger batches go through one pipeline.
BEAT_CHUNK = 5000
# The pool retries a failed connect for this long, then gives up until the next call asks
# again: psycopg_pool's own backoff doubles up to minutes, so a returning server would sit
# unused; capped here, the next call after the server is back connects at once.
RECONNECT_S = 1.0

# Every SQLSTATE the seedcore functions raise (grep sql/migrations for ERRCODE).
ERRORS: dict[str, type[SeedcoreError]] = {
    "SC001": FencedEpoch,
    "SC002": UnknownInstance,
    "SC003": InvalidStatus,
    "SC101": LeaderLockHeld,  # DETAIL is the holder
    "SC102": LeaseLost,
    "SC103": RunClosed,
    "SC104": InvalidOutcome,
    "SC105": ConfigError,  # invalid retention argument (audit retention)
}
# Missing schema, table or function: the database was not migrated.
_NOT_MIGRATED = {"3F000", "42P01", "42883"}


@dataclass(frozen=True)
class InstanceRecord:
    """What an actor registers about itself (the parameters of ``register_instance``)."""

    instance_id: UUID
    logical_id: str
    epoch: UUID
    actor_name: str | None = None
    namespace: str | None = None
    node_id: str | None = None
    ip_address: str | None = None
    pid: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ActiveInstance:
    """A row of ``seedcore.active_instance``.

    Not frozen on purpose: a frozen dataclass costs five times as much to build, and the
    whole fleet is read at once (10,000 rows in well under the 50 ms budget). Treat it as
    a value all the same.
    """

    logical_id: str
    instance_id: UUID
    cluster_epoch: UUID
    actor_name: str | None
    namespace: str | None
    node_id: str | None
    ip_address: str | None
    pid: int | None
    started_at: datetime
    last_heartbeat: datetime
    metadata: dict[str, Any]
    live_replicas: int | None = None


_JSON_DECODER = json.JSONDecoder()
# The C scanner when available (typeshed mistypes its argument).
_JSON_SCAN = json.scanner.make_scanner(_JSON_DECODER)  # type: ignore[arg-type]


def _json_loads(data: str | bytes) -> Any:
    """jsonb to Python at a third of ``json.loads``' cost (it is half of a fleet read).

    PostgreSQL prints jsonb canonically (no surrounding whitespace), so the scanner alone
    suffices; anything it does not consume entirely goes through the full decoder.
    """
    text = data if isinstance(data, str) else bytes(data).decode()
    try:
        value, end = _JSON_SCAN(text, 0)
    except StopIteration:
        end = -1
    return value if end == len(text) else _JSON_DECODER.decode(text)


def _configure(conn: psycopg.Connection) -> None:
    set_json_loads(_json_loads, conn)


def _translate(exc: psycopg.Error) -> SeedcoreError | None:
    """The typed error for a definitive failure; None when it is worth retrying."""
    state = exc.sqlstate or ""
    message = exc.diag.message_primary or str(exc)
    if (typed := ERRORS.get(state)) is not None:
        return typed(exc.diag.message_detail or message if typed is LeaderLockHeld else message)
    if state == "42501":
        return ConfigError(f"the registry role lacks a privilege: {message}")
    if state in _NOT_MIGRATED:
        return ConfigError(f"registry schema missing, run scripts/migrate.py: {message}")
    if isinstance(exc, psycopg.OperationalError) or state.startswith(("08", "57P", "40")):
        return None
    return SeedcoreError(f"registry call failed ({state or 'no sqlstate'}): {message}")


def _shaped(cur: psycopg.Cursor[Any], shape: str) -> Any:
    if shape == "many":
        return cur.fetchall()
    row = cur.fetchone() if shape != "exec" and cur.description else None
    return row[0] if shape == "scalar" and row is not None else row


class Registry:
    """Client of the ``seedcore`` schema; thread-safe, use as a context manager.

    ``timeout`` is the budget of one call including retries: waiting for a pooled
    connection, and backoff between at most ``attempts`` tries. ``extra_sql`` adds named
    statement files to ``sql/`` (the tests add ``tests/sql/admin.sql``).
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 4,
        timeout: float = 1.5,
        attempts: int = 3,
        extra_sql: Iterable[Path] = (),
    ) -> None:
        self._timeout = timeout
        self._attempts = attempts
        self._queries = load_sql(extra_sql)
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=timeout,
            reconnect_timeout=RECONNECT_S,
            name="seedcore-registry",
            kwargs={"autocommit": True, "connect_timeout": 2},
            configure=_configure,
        )
        # Connect in the background: constructing a Registry never blocks or fails.
        self._pool.open(wait=False)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close(timeout=1.0)

    def _run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        """Run ``fn`` on a pooled connection with bounded retries inside the time budget."""
        deadline = time.monotonic() + self._timeout
        delay = 0.05
        last: BaseException | None = None
        for attempt in range(1, self._attempts + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                with self._pool.connection(timeout=remaining) as conn:
                    return fn(conn)
            except PoolTimeout as exc:
                raise self._no_connection() from exc
            except psycopg.Error as exc:
                typed = _translate(exc)
                if typed is not None:
                    raise typed from exc
                last = exc
                log.debug("registry attempt %d failed: %s", attempt, exc.sqlstate or exc)
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay *= 2
        raise RegistryUnavailable(
            f"registry call failed after {self._attempts} attempts: {last}"
        ) from last

    def call(self, name: str, /, **params: Any) -> Any:
        """Run the named statement; the result has the shape of its ``-- name:`` header.

        A parameter left out is NULL (so ``p_now`` falls back to ``now()``); a mapping is
        passed as jsonb.
        """
        query = self._queries.get(name)
        if query is None:
            raise QueryNotFound(f"no SQL query named {name!r}")
        if unknown := params.keys() - query.params:
            raise TypeError(f"query {name!r} has no parameter(s) {sorted(unknown)}")
        args = {
            p: Jsonb(dict(v)) if isinstance(v := params.get(p), Mapping) else v
            for p in query.params
        }
        factory = dict_row if query.shape in ("one", "many") else tuple_row

        def run(conn: psycopg.Connection) -> Any:
            with conn.cursor(row_factory=factory) as cur:
                # no placeholders: the simple protocol, which allows several statements
                return _shaped(cur.execute(query.text, args or None), query.shape)

        return self._run(run)

    @contextmanager
    def session(self) -> Iterator[psycopg.Connection]:
        """One pooled connection for session-scoped work (advisory lock, transactions).

        Not retried; only the wait for the connection is translated.
        """
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise self._no_connection() from exc

    def _no_connection(self) -> RegistryUnavailable:
        return RegistryUnavailable(f"no registry connection within {self._timeout:.1f}s")

    # ------------------------------------------------------------ typed calls of the runtime
    def register_instance(self, record: InstanceRecord, *, now: datetime | None = None) -> None:
        """Idempotent; raises :class:`FencedEpoch` when ``record.epoch`` is not current."""
        self.call("register_instance", **vars(record), now=now)

    def beat_many(
        self, instance_ids: Iterable[UUID], epoch: UUID, *, now: datetime | None = None
    ) -> int:
        """Heartbeats for many instances in one round trip; returns how many were accepted."""
        ids = list(instance_ids)
        if not ids:
            return 0
        chunks = [ids[i : i + BEAT_CHUNK] for i in range(0, len(ids), BEAT_CHUNK)]
        statement = self._queries["beat_many"].text

        def run(conn: psycopg.Connection) -> int:
            with conn.pipeline():
                cursors = [
                    conn.execute(statement, {"instance_ids": c, "epoch": epoch, "now": now})
                    for c in chunks
                ]
            return sum(int(row[0]) for cur in cursors if (row := cur.fetchone()))

        return self._run(run)

    def expire_stale(self, **params: Any) -> dict[str, Any]:
        """One expiry pass (``timeout``, ``force``, ``now``); warns when it was held back."""
        verdict: dict[str, Any] = self.call("expire_stale", **params)
        if verdict["held_back"]:
            log.warning(
                "registry self-preservation: %d of %d live instances stale, none expired",
                verdict["candidates"],
                verdict["live"],
            )
        return verdict

    def active_instances(self) -> list[ActiveInstance]:
        """The ``active_instance`` view: the freshest live replica of every agent.

        Binary rows built positionally into dataclasses: the fleet read's fast path.
        """
        statement = self._queries["active_instance"].text

        def run(conn: psycopg.Connection) -> list[ActiveInstance]:
            with conn.cursor(binary=True, row_factory=args_row(ActiveInstance)) as cur:
                return cur.execute(statement).fetchall()

        return self._run(run)
