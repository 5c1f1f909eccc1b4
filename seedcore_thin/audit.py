"""The reconciler's PostgreSQL side: leader lease, audited runs, backoff and change signal.

Thin on purpose: every rule (who may hold the lease, what abandons a run, how long a failed
agent waits) lives in the ``seedcore`` functions of ``sql/migrations/0010-0014``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from seedcore_thin.errors import LeaseLost
from seedcore_thin.registry import Registry

LEASE_NAME = "reconciler"


def default_holder() -> str:
    """host:pid:random: unique per process, readable in lock errors and the audit."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Lease:
    """The fencing token of the lease we hold."""

    term: int
    cluster_epoch: uuid.UUID
    expires_at: datetime


class AuditStore:
    """Lease, audit and read-backs for one reconciler, over a registry client it owns."""

    def __init__(self, registry: Registry, *, holder: str, lease_ttl: float = 30.0) -> None:
        self.registry = registry
        self.holder = holder
        self.lease_ttl = lease_ttl
        self.lease: Lease | None = None

    def close(self) -> None:
        self.registry.close()

    def acquire(self) -> Lease:
        """Acquire or extend the lease; LeaderLockHeld names the holder when it is taken."""
        ttl = timedelta(seconds=self.lease_ttl)
        row = self.registry.call("acquire_lease", holder=self.holder, ttl=ttl, name=LEASE_NAME)
        self.lease = Lease(**row)
        return self.lease

    def release(self) -> bool:
        if self.lease is None:
            return False
        term, self.lease = self.lease.term, None
        return bool(
            self.registry.call("release_lease", holder=self.holder, name=LEASE_NAME, term=term)
        )

    def begin_run(self, plan: Mapping[str, Any], *, scope: str | None, strict: bool) -> int:
        """Persist the plan and every step as intent; needs the lease (LeaseLost otherwise)."""
        if self.lease is None:
            raise LeaseLost("begin_run without a lease")
        run_id = self.registry.call(
            "begin_run",
            holder=self.holder,
            term=self.lease.term,
            plan=plan,
            scope=scope,
            strict=strict,
            host=socket.gethostname(),
            pid=os.getpid(),
            name=LEASE_NAME,
        )
        return int(run_id)

    def record(self, run_id: int, **step: Any) -> None:
        """One step's outcome: kind, namespace, agent_id, outcome, error, detail, duration_ms."""
        self.registry.call("record_action", run_id=run_id, **step)

    def finish_run(self, run_id: int, *, error: str | None = None) -> str:
        return str(self.registry.call("finish_run", run_id=run_id, error=error))

    def backoff(self, namespace: str | None) -> dict[tuple[str, str], str]:
        """(namespace, agent) -> why it waits, for agents whose recent steps failed."""
        return {
            (r["namespace"], r["agent_id"]): f"failed {r['failures']} time(s), retry at "
            f"{r['retry_at']:%H:%M:%S}: {r['last_error']}"
            for r in self.registry.call("reconcile_backoff", namespace=namespace)
        }

    def deployed(self, namespace: str | None) -> dict[tuple[str, str], str]:
        """(namespace, agent) -> the spec hash we last deployed (for actors not answering)."""
        rows = self.registry.call("reconcile_deployed", namespace=namespace)
        return {(r["namespace"], r["agent_id"]): r["spec_hash"] for r in rows}

    def live_version(self) -> int:
        """The live-set change counter: moves when ``active_instance`` changes other than by
        the clock (one scalar, where a digest of the view cost 100s of ms at 100,000)."""
        return int(self.registry.call("live_set_version"))

    def prune_history(self, *, batch_size: int = 500, max_batches: int = 20) -> int:
        """Delete runs past the retention settings in a few small batches (a loop never waits
        long here; the rest goes on the next call); returns how many runs went."""
        deleted = 0
        for _ in range(max_batches):
            row = self.registry.call("prune_reconcile_history", batch_size=batch_size)
            deleted += int(row["runs_deleted"])
            if not row["more"]:
                break
        return deleted
