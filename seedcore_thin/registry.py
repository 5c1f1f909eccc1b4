"""The PostgreSQL liveness registry client: a small pool, named calls, typed errors.

All logic lives in the ``seedcore`` PL/pgSQL functions; this module only calls them (see
``sql/queries.sql``), maps their SQLSTATEs onto :mod:`seedcore_thin.errors`, and retries
transient failures with backoff inside a time budget. When the database cannot be reached
the budget runs out and :class:`RegistryUnavailable` tells the caller, well within two
seconds, to fall back to Ray's own discovery.
"""

from __future__ import annotations

import json
import json.scanner
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import args_row, class_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from seedcore_thin.errors import (
    ConfigError,
    FencedEpoch,
    InvalidStatus,
    RegistryUnavailable,
    SeedcoreError,
    UnknownInstance,
)
from seedcore_thin.queries import sql

log = logging.getLogger(__name__)

T = TypeVar("T")
InstanceStatus = Literal["starting", "alive", "draining", "dead"]

# One beat_many call per this many ids; bigger batches go through one pipeline.
BEAT_CHUNK = 5000

_TYPED: dict[str, type[SeedcoreError]] = {
    "SC001": FencedEpoch,
    "SC002": UnknownInstance,
    "SC003": InvalidStatus,
}
# Missing schema, table or function: the database was not migrated.
_NOT_MIGRATED = {"3F000", "42P01", "42883"}


@dataclass(frozen=True)
class InstanceRecord:
    """What an actor registers about itself."""

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
    """A row of ``seedcore.active_instance`` (or ``active_instances``: no live_replicas).

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


@dataclass(slots=True)
class HealthRow:
    """A row of ``seedcore.instance_health``."""

    cluster_epoch: UUID
    is_current_epoch: bool
    status: str
    instances: int
    stale_instances: int
    oldest_heartbeat: datetime
    newest_heartbeat: datetime


@dataclass(frozen=True)
class ExpireResult:
    """The verdict of one expiry pass.

    ``held_back`` is true when self-preservation refused to expire ``candidates`` of
    ``live`` instances (too many at once looks like an outage, not a crash).
    """

    expired: int
    candidates: int
    live: int
    held_back: bool


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


def _interval(value: timedelta | float | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


def _translate(exc: psycopg.Error) -> SeedcoreError | None:
    """The typed error for a definitive failure; None when it is worth retrying."""
    state = exc.sqlstate or ""
    message = exc.diag.message_primary or str(exc)
    if state in _TYPED:
        return _TYPED[state](message)
    if state == "42501":
        return ConfigError(f"the registry role lacks a privilege: {message}")
    if state in _NOT_MIGRATED:
        return ConfigError(f"registry schema missing, run scripts/migrate.py: {message}")
    if isinstance(exc, psycopg.OperationalError) or state.startswith(("08", "57P", "40")):
        return None
    return SeedcoreError(f"registry call failed ({state or 'no sqlstate'}): {message}")


class Registry:
    """Client of the ``seedcore`` registry schema; thread-safe, use as a context manager.

    ``timeout`` is the budget of one call including retries: waiting for a pooled
    connection, and backoff between at most ``attempts`` tries.
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 4,
        timeout: float = 1.5,
        attempts: int = 3,
    ) -> None:
        self._timeout = timeout
        self._attempts = attempts
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=timeout,
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

    def _call(self, fn: Callable[[psycopg.Connection], T], *, retry: bool = True) -> T:
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
                raise RegistryUnavailable(
                    f"no registry connection within {self._timeout:.1f}s"
                ) from exc
            except psycopg.Error as exc:
                typed = _translate(exc)
                if typed is not None:
                    raise typed from exc
                if not retry:
                    raise RegistryUnavailable(f"registry call interrupted: {exc}") from exc
                last = exc
                log.debug("registry attempt %d failed: %s", attempt, exc.sqlstate or exc)
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay *= 2
        raise RegistryUnavailable(
            f"registry call failed after {self._attempts} attempts: {last}"
        ) from last

    def _scalar(self, name: str, params: Mapping[str, Any], *, retry: bool = True) -> Any:
        def run(conn: psycopg.Connection) -> Any:
            row = conn.execute(sql(name), params).fetchone()
            return row[0] if row else None

        return self._call(run, retry=retry)

    def ping(self) -> None:
        """Raise :class:`RegistryUnavailable` unless the database answers."""
        self._scalar("ping", {})

    def current_epoch(self) -> UUID:
        epoch: UUID = self._scalar("current_epoch", {})
        return epoch

    def rotate_epoch(self, *, now: datetime | None = None) -> UUID:
        """Start a new epoch, fencing every older instance. Not retried: not idempotent."""
        epoch: UUID = self._scalar("rotate_epoch", {"now": now}, retry=False)
        return epoch

    def register_instance(self, record: InstanceRecord, *, now: datetime | None = None) -> None:
        """Idempotent; raises :class:`FencedEpoch` when ``record.epoch`` is not current."""
        params = {
            "instance_id": record.instance_id,
            "logical_id": record.logical_id,
            "epoch": record.epoch,
            "actor_name": record.actor_name,
            "namespace": record.namespace,
            "node_id": record.node_id,
            "ip_address": record.ip_address,
            "pid": record.pid,
            "metadata": Jsonb(dict(record.metadata)),
            "now": now,
        }
        self._scalar("register_instance", params)

    def beat(self, instance_id: UUID, epoch: UUID, *, now: datetime | None = None) -> bool:
        """One heartbeat; False for an unknown or dead instance, FencedEpoch when fenced."""
        params = {"instance_id": instance_id, "epoch": epoch, "now": now}
        return bool(self._scalar("beat", params))

    def beat_many(
        self, instance_ids: Iterable[UUID], epoch: UUID, *, now: datetime | None = None
    ) -> int:
        """Heartbeats for many instances in one round trip; returns how many were accepted."""
        ids = list(instance_ids)
        if not ids:
            return 0
        chunks = [ids[i : i + BEAT_CHUNK] for i in range(0, len(ids), BEAT_CHUNK)]
        statement = sql("beat_many")

        def run(conn: psycopg.Connection) -> int:
            if len(chunks) == 1:
                row = conn.execute(
                    statement, {"instance_ids": chunks[0], "epoch": epoch, "now": now}
                ).fetchone()
                return int(row[0]) if row else 0
            with conn.pipeline():
                cursors = [
                    conn.execute(statement, {"instance_ids": c, "epoch": epoch, "now": now})
                    for c in chunks
                ]
            return sum(int(row[0]) for cur in cursors if (row := cur.fetchone()))

        return self._call(run)

    def set_instance_status(
        self, instance_id: UUID, status: InstanceStatus | str, *, now: datetime | None = None
    ) -> None:
        """Raises InvalidStatus, UnknownInstance, or FencedEpoch (reviving a fenced one)."""
        params = {"instance_id": instance_id, "status": status, "now": now}
        self._scalar("set_instance_status", params)

    def deregister_instance(self, instance_id: UUID, *, now: datetime | None = None) -> None:
        """Mark the instance dead (clean shutdown); UnknownInstance when never registered."""
        self._scalar("deregister_instance", {"instance_id": instance_id, "now": now})

    def expire_stale(
        self,
        timeout: timedelta | float | None = None,
        force: bool = False,
        *,
        now: datetime | None = None,
    ) -> ExpireResult:
        """One expiry pass (``timeout`` defaults to the stale window in the database)."""
        params = {"timeout": _interval(timeout), "force": force, "now": now}

        def run(conn: psycopg.Connection) -> ExpireResult:
            with conn.cursor(row_factory=class_row(ExpireResult)) as cur:
                result = cur.execute(sql("expire_stale"), params).fetchone()
            if result is None:  # pragma: no cover - the function always returns a row
                raise SeedcoreError("expire_stale returned no row")
            return result

        result = self._call(run)
        if result.held_back:
            log.warning(
                "registry self-preservation: %d of %d live instances stale, none expired",
                result.candidates,
                result.live,
            )
        return result

    def expire_old_epoch_instances(self, *, now: datetime | None = None) -> int:
        return int(self._scalar("expire_old_epoch_instances", {"now": now}))

    def _rows(self, name: str, cls: Callable[..., T]) -> list[T]:
        """All rows of a named query as ``cls`` built positionally (columns in field order)."""

        def run(conn: psycopg.Connection) -> list[T]:
            with conn.cursor(binary=True, row_factory=args_row(cls)) as cur:
                return cur.execute(sql(name)).fetchall()

        return self._call(run)

    def active_instances(self) -> list[ActiveInstance]:
        """The ``active_instance`` view: the freshest live replica of every agent."""
        return self._rows("active_instance", ActiveInstance)

    def active_replicas(self) -> list[ActiveInstance]:
        """The ``active_instances`` view: every live replica."""
        return self._rows("active_replicas", ActiveInstance)

    def instance_health(self) -> list[HealthRow]:
        return self._rows("instance_health", HealthRow)
