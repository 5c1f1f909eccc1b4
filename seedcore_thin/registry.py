"""The one PostgreSQL client: a small pool, named calls, one retry policy, typed errors.

The logic lives in the ``seedcore`` PL/pgSQL functions, called by name (``sql/queries.sql``).
An unreachable database is :class:`RegistryUnavailable` within two seconds, so callers fall
back to Ray's own discovery.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import args_row, dict_row, tuple_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic_core import from_json

from seedcore_thin import errors
from seedcore_thin.queries import load_sql

log = logging.getLogger(__name__)

T = TypeVar("T")

# One beat_many statement per this many ids; bigger batches go through one pipeline.
BEAT_CHUNK = 5000
# The pool retries a failed connect for this long, then waits for the next call to ask:
# psycopg_pool's own backoff doubles up to minutes, so a returning server would sit unused.
RECONNECT_S = 1.0

# Every SQLSTATE the seedcore functions raise (grep sql/migrations for ERRCODE).
ERRORS: dict[str, type[errors.SeedcoreError]] = {
    "SC001": errors.FencedEpoch,
    "SC002": errors.UnknownInstance,
    "SC003": errors.InvalidStatus,
    "SC101": errors.LeaderLockHeld,  # DETAIL is the holder
    "SC102": errors.LeaseLost,
    "SC103": errors.RunClosed,
    "SC104": errors.InvalidOutcome,
    "SC105": errors.ConfigError,  # invalid retention argument (audit retention)
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
    """A row of ``seedcore.active_instance``. Not frozen, yet a value: a frozen dataclass
    costs five times as much to build, and a fleet read builds 10,000 within 50 ms."""

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


def _json_loads(data: str | bytes) -> Any:
    """jsonb at a fraction of ``json.loads``' cost (it was half of a fleet read); the Rust
    parser stops at 200 levels of nesting, ``json.loads`` takes what is deeper."""
    try:
        return from_json(data)
    except ValueError:
        return json.loads(data)


def _translate(exc: psycopg.Error) -> errors.SeedcoreError | None:
    """The typed error for a definitive failure; None when it is worth retrying."""
    state = exc.sqlstate or ""
    message = exc.diag.message_primary or str(exc)
    if (typed := ERRORS.get(state)) is not None:
        return typed(exc.diag.message_detail or message if state == "SC101" else message)
    if state == "42501":
        return errors.ConfigError(f"the registry role lacks a privilege: {message}")
    if state in _NOT_MIGRATED:
        return errors.ConfigError(f"registry schema missing, run scripts/migrate.py: {message}")
    if isinstance(exc, psycopg.OperationalError) or state.startswith(("08", "57P", "40")):
        return None
    return errors.SeedcoreError(f"registry call failed ({state or 'no sqlstate'}): {message}")


class Registry(AbstractContextManager["Registry"]):
    """Client of the ``seedcore`` schema; thread-safe, a context manager. ``timeout`` is the
    budget of one call (waits for a connection, backoff between tries); ``extra_sql`` adds
    named statement files to ``sql/``."""

    def __init__(
        self, dsn: str, *, max_size: int = 4, timeout: float = 1.5, extra_sql: Iterable[Path] = ()
    ) -> None:
        self._timeout = timeout
        self._queries = load_sql(extra_sql)
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=True,  # connecting in the background: constructing never blocks or fails
            timeout=timeout,
            reconnect_timeout=RECONNECT_S,
            name="seedcore-registry",
            kwargs={"autocommit": True, "connect_timeout": 2},
            configure=functools.partial(set_json_loads, _json_loads),
        )

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close(timeout=1.0)

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        """``fn(connection)`` on a pooled connection; a transient failure (dropped session,
        serialization failure) runs ``fn`` again inside the time budget, others raise typed."""
        deadline = time.monotonic() + self._timeout
        delay = 0.05
        while True:
            try:
                with self._pool.connection(timeout=deadline - time.monotonic()) as conn:
                    return fn(conn)
            except PoolTimeout as exc:
                message = f"no registry connection within {self._timeout:.1f}s"
                raise errors.RegistryUnavailable(message) from exc
            except psycopg.Error as exc:
                if (typed := _translate(exc)) is not None:
                    raise typed from exc
                if time.monotonic() + delay > deadline:
                    raise errors.RegistryUnavailable(f"registry call failed: {exc}") from exc
                log.debug("registry call failed, retrying: %s", exc.sqlstate or exc)
            time.sleep(delay)
            delay *= 2

    def call(self, name: str, /, **params: Any) -> Any:
        """Run the named statement; the result has the shape of its ``-- name:`` header. A
        parameter left out is NULL (so ``p_now`` falls back to ``now()``); a mapping is jsonb."""
        if (query := self._queries.get(name)) is None:
            raise errors.QueryNotFound(f"no SQL query named {name!r}")
        if unknown := params.keys() - query.params:
            raise TypeError(f"query {name!r} has no parameter(s) {sorted(unknown)}")
        args = {
            p: Jsonb(dict(v)) if isinstance(v := params.get(p), Mapping) else v
            for p in query.params
        }
        factory = dict_row if query.shape in ("one", "many") else tuple_row

        def shaped(conn: psycopg.Connection) -> Any:
            with conn.cursor(row_factory=factory) as cur:
                # no placeholders: the simple protocol, which allows several statements
                cur.execute(query.text, args or None)
                if query.shape == "many":
                    return cur.fetchall()
                row: Any = cur.fetchone() if query.shape != "exec" and cur.description else None
                return row[0] if query.shape == "scalar" and row is not None else row

        return self.run(shaped)

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

        def beat(conn: psycopg.Connection) -> int:
            with conn.pipeline():
                cursors = [
                    conn.execute(statement, {"instance_ids": c, "epoch": epoch, "now": now})
                    for c in chunks
                ]
            return sum(int(row[0]) for cur in cursors if (row := cur.fetchone()))

        return self.run(beat)

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
        """The freshest live replica of every agent; binary rows built positionally into
        dataclasses, the fleet read's fast path."""
        statement = self._queries["active_instance"].text

        def read(conn: psycopg.Connection) -> list[ActiveInstance]:
            with conn.cursor(binary=True, row_factory=args_row(ActiveInstance)) as cur:
                return cur.execute(statement).fetchall()

        return self.run(read)
