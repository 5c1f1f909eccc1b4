"""The reconciler's PostgreSQL side: leader lease, audited runs, backoff and change signal.

Thin on purpose: every rule (who may hold the lease, what abandons a run, how long a
failed agent waits) lives in the ``seedcore`` functions of ``sql/migrations/0010-0013``;
this class calls them by name and maps their SQLSTATEs onto typed errors. It holds a single
connection (reconnected on demand), so a reconciler process never needs more than that
plus the registry's small pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from seedcore_thin.errors import (
    LeaderLockHeld,
    LeaseLost,
    RegistryUnavailable,
    SeedcoreError,
)
from seedcore_thin.queries import sql

log = logging.getLogger(__name__)

DEFAULT_LEASE = "reconciler"


def default_holder() -> str:
    """host:pid:random: unique per process, readable in the lock error and the audit."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Lease:
    """The fencing token of the lease we hold."""

    term: int
    cluster_epoch: uuid.UUID
    expires_at: datetime


class AuditStore:
    """Lease, audit and read-backs for one reconciler; thread-safe (one lock, one connection)."""

    def __init__(
        self,
        dsn: str,
        *,
        holder: str | None = None,
        lease_name: str = DEFAULT_LEASE,
        lease_ttl: float = 30.0,
        connect_timeout: int = 2,
    ) -> None:
        self.dsn = dsn
        self.holder = holder or default_holder()
        self.lease_name = lease_name
        self.lease_ttl = lease_ttl
        self.lease: Lease | None = None
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=self._connect_timeout
            )
        return self._conn

    def _rows(self, name: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                cur = self._connection().execute(sql(name), dict(params))
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError as exc:
                self._drop()
                raise RegistryUnavailable(f"audit database unreachable: {exc}") from exc
            except psycopg.Error as exc:
                raise self._typed(exc) from exc

    def _typed(self, exc: psycopg.Error) -> SeedcoreError:
        state = exc.sqlstate or ""
        message = exc.diag.message_primary or str(exc)
        if state == "SC101":
            return LeaderLockHeld(exc.diag.message_detail or message)
        if state == "SC102":
            return LeaseLost(message)
        if state.startswith("08") or state.startswith("57P"):
            self._drop()
            return RegistryUnavailable(message)
        return SeedcoreError(f"reconcile audit call failed ({state}): {message}")

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ------------------------------------------------------------------ lease
    def acquire(self, *, now: datetime | None = None) -> Lease:
        """Acquire or extend the lease; LeaderLockHeld names the holder when it is taken."""
        rows = self._rows(
            "acquire_lease",
            {
                "holder": self.holder,
                "ttl": timedelta(seconds=self.lease_ttl),
                "name": self.lease_name,
                "now": now,
            },
        )
        term, epoch, expires_at = rows[0]
        self.lease = Lease(int(term), epoch, expires_at)
        return self.lease

    def release(self) -> bool:
        if self.lease is None:
            return False
        term, self.lease = self.lease.term, None
        rows = self._rows(
            "release_lease", {"holder": self.holder, "name": self.lease_name, "term": term}
        )
        return bool(rows and rows[0][0])

    # ------------------------------------------------------------------ audit
    def begin_run(self, plan: Mapping[str, Any], *, scope: str | None, strict: bool) -> int:
        """Persist the plan and every step as intent; needs the lease (LeaseLost otherwise)."""
        if self.lease is None:
            raise LeaseLost("begin_run without a lease")
        rows = self._rows(
            "begin_run",
            {
                "holder": self.holder,
                "term": self.lease.term,
                "plan": Jsonb(dict(plan)),
                "scope": scope,
                "strict": strict,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "name": self.lease_name,
                "now": None,
            },
        )
        return int(rows[0][0])

    def record(
        self,
        run_id: int,
        *,
        kind: str,
        namespace: str,
        agent_id: str,
        outcome: str,
        error: str | None,
        detail: Mapping[str, Any],
        duration_ms: int,
    ) -> None:
        self._rows(
            "record_action",
            {
                "run_id": run_id,
                "kind": kind,
                "namespace": namespace,
                "agent_id": agent_id,
                "outcome": outcome,
                "error": error,
                "detail": Jsonb(dict(detail)),
                "duration_ms": duration_ms,
                "now": None,
            },
        )

    def finish_run(self, run_id: int, *, error: str | None = None) -> str:
        rows = self._rows("finish_run", {"run_id": run_id, "error": error, "now": None})
        return str(rows[0][0])

    # ------------------------------------------------------------------ read-backs
    def backoff(
        self, namespace: str | None, *, base_s: float = 2.0, max_s: float = 300.0
    ) -> dict[tuple[str, str], str]:
        """(namespace, agent) -> why it waits, for agents whose recent steps failed."""
        rows = self._rows(
            "reconcile_backoff",
            {
                "namespace": namespace,
                "base": timedelta(seconds=base_s),
                "max": timedelta(seconds=max_s),
                "now": None,
            },
        )
        return {
            (ns, agent): f"failed {n} time(s), retry at {retry_at:%H:%M:%S}: {err}"
            for ns, agent, n, err, retry_at in rows
        }

    def deployed(self, namespace: str | None) -> dict[tuple[str, str], str]:
        """(namespace, agent) -> the spec hash we last deployed (for actors not answering)."""
        rows = self._rows("reconcile_deployed", {"namespace": namespace})
        return {(ns, agent): h for ns, agent, h in rows}

    def live_fingerprint(self, namespace: str | None) -> tuple[int, str]:
        """How many agents are live in ``active_instance``, and a digest of which."""
        rows = self._rows("reconcile_live_fingerprint", {"namespace": namespace})
        return int(rows[0][0]), str(rows[0][1])
