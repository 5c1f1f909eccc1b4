"""Benchmark the registry's hot paths on a fresh database it creates and drops.

``bench_registry.py --json [-n 10000] [--big 100000]`` prints one JSON object: beats per
second one call at a time and batched (``beat_many`` with a uuid[]), their ratio, one expire
pass that expires 10 % of the fleet. Then, at ``n`` and at ``--big`` instances (0 skips it;
keys ``..._100k``), the live set as the router reads it:

- ``active_instance_ms``: the router's live-set refresh when nothing changed (what it runs
  every second): ``live_set_version`` then the set it already holds;
- ``active_instance_changed_ms``: the refresh after a change: the counter, then the whole
  ``active_instance`` view into ``LiveInstance`` objects (also every 30 s as a backstop);
- ``active_instance_full_ms``: the baseline in the same run, the read every second before
  (``Registry.active_instances()``, the whole view into dataclasses), and
  ``active_instance_ratio`` = baseline / steady refresh;
- ``active_instance_server_ms``: the view computed in the database alone;
  ``active_instance_of_ms_<k>``: the rows of ``k`` candidate agents only (an alternative).

Targets on the 2-core dev machine: batched >= 50,000/s and >= 10x single, expire <= 100 ms,
the router's live-set read <= 10 ms at 10,000 and <= 50 ms at 100,000 (or off the per-second
path).
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from benchkit import emit, median_ms
from psycopg.types.json import Jsonb

from seedcore_thin.config import state_dir
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.queries import project_root, sql
from seedcore_thin.registry import Registry
from seedcore_thin.router import RegistryLive, Router

ADMIN_SQL = project_root() / "tests" / "sql" / "admin.sql"  # beat, active_instance_count
BATCH = 1000
ROUNDS = 5
CANDIDATES = (50, 500, 5000)


def _ahead() -> datetime:
    """Beats stamped this far ahead keep the set live (stale window 15 s) while it is read."""
    return datetime.now(UTC) + timedelta(minutes=10)


def _register(dsn: str, epoch: uuid.UUID, ids: list[uuid.UUID]) -> None:
    """Bulk setup through the real register_instance, pipelined (not measured)."""
    params = [
        {
            "instance_id": iid,
            "logical_id": f"agent-{i:05d}",
            "epoch": epoch,
            "actor_name": f"agent-{i:05d}",
            "namespace": "bench",
            "node_id": f"node-{i % 8}",
            "ip_address": "127.0.0.1",
            "pid": 10_000 + i,
            "metadata": Jsonb({"organ": f"organ-{i % 10}", "replica": i % 3}),
            "now": None,
        }
        for i, iid in enumerate(ids)
    ]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(sql("register_instance"), params)


def _live_reads(reg: Registry, n: int, suffix: str) -> dict[str, float]:
    """The reads a router may make instead of the whole view (see the module docstring)."""
    rng = random.Random(5)
    now = [0.0]
    router = Router(None, RegistryLive(reg, "bench"), clock=lambda: now[0])  # type: ignore[arg-type]

    def refresh(changed: bool) -> None:
        """One refresh of the router's live set, a second after the last one."""
        now[0] += 1.0
        if changed:
            router._live_read = (None, float("-inf"))  # as if the counter had moved
        if len(router._live_set(now[0]) or ()) != n:
            raise SystemExit("the router's live set misses instances")

    steady = median_ms(lambda: refresh(False), repeat=50)
    full = median_ms(reg.active_instances)
    out = {
        f"active_instance_ms{suffix}": round(steady, 3),
        f"active_instance_changed_ms{suffix}": round(median_ms(lambda: refresh(True)), 2),
        f"active_instance_full_ms{suffix}": round(full, 2),
        f"active_instance_ratio{suffix}": round(full / steady, 1),
        f"active_instance_server_ms{suffix}": round(
            median_ms(lambda: reg.call("active_instance_count")), 2
        ),
        f"live_set_version_ms{suffix}": round(
            median_ms(lambda: reg.call("live_set_version"), repeat=50), 3
        ),
    }
    for k in CANDIDATES:
        if k > n:
            continue
        names = [f"agent-{i:05d}" for i in rng.sample(range(n), k)]
        rows = reg.call("active_instance_of", agent_ids=names)
        if len(rows) != k:
            raise SystemExit(f"active_instance_of returned {len(rows)} rows of {k}")
        read = functools.partial(reg.call, "active_instance_of", agent_ids=names)
        out[f"active_instance_of_ms_{k}{suffix}"] = round(median_ms(read), 2)
    return out


def run_big(dsn: str, n: int) -> dict[str, float | int]:
    """Only the router's reads, over ``n`` registered and beating instances."""
    ids = [uuid.uuid4() for _ in range(n)]
    with Registry(dsn, max_size=2, timeout=60, extra_sql=[ADMIN_SQL]) as reg:
        epoch = reg.call("current_epoch")
        start = time.perf_counter()
        _register(dsn, epoch, ids)
        reg.beat_many(ids, epoch, now=_ahead())
        setup_s = time.perf_counter() - start
        if reg.call("active_instance_count") != n:
            raise SystemExit("active_instance does not list every instance")
        suffix = f"_{n // 1000}k"
        return {f"setup_s{suffix}": round(setup_s, 1), **_live_reads(reg, n, suffix)}


def run(dsn: str, n: int) -> dict[str, float | int]:
    ids = [uuid.uuid4() for _ in range(n)]
    with Registry(dsn, max_size=2, timeout=30, extra_sql=[ADMIN_SQL]) as reg:
        epoch = reg.call("current_epoch")
        _register(dsn, epoch, ids)

        start = time.perf_counter()
        for iid in ids:
            reg.call("beat", instance_id=iid, epoch=epoch)
        single = n / (time.perf_counter() - start)

        batches = [ids[i : i + BATCH] for i in range(0, n, BATCH)]
        reg.beat_many(batches[0], epoch)  # warm up
        start = time.perf_counter()
        accepted = sum(reg.beat_many(b, epoch) for _ in range(ROUNDS) for b in batches)
        batched = accepted / (time.perf_counter() - start)
        if accepted != n * ROUNDS:
            raise SystemExit(f"beat_many accepted {accepted} of {n * ROUNDS}")

        reg.beat_many(ids, epoch, now=_ahead())
        if len(reg.active_instances()) != n:
            raise SystemExit("active_instance does not list every instance")
        reads = _live_reads(reg, n, "")

        # 10 % fall silent; the expire pass must find and expire exactly those.
        silent = max(1, n // 10)
        reg.beat_many(ids[:silent], epoch, now=datetime.now(UTC) - timedelta(seconds=60))
        start = time.perf_counter()
        result = reg.expire_stale()
        expire_ms = (time.perf_counter() - start) * 1000
        if result["expired"] != silent:
            raise SystemExit(f"expire pass expired {result['expired']}, expected {silent}")

    return {
        "instances": n,
        "beats_per_s_single": round(single),
        "beats_per_s_batched": round(batched),
        "batched_vs_single": round(batched / single, 1),
        "batch_size": BATCH,
        "expire_ms": round(expire_ms, 2),
        "expired": result["expired"],
        **reads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-n", "--instances", type=int, default=10_000)
    parser.add_argument(
        "--big", type=int, default=100_000, help="instances of the read-only run (0: skip)"
    )
    parser.add_argument(
        "--pg-dsn",
        help="server to create the scratch database on (default: the test server)",
    )
    args = parser.parse_args()
    server = args.pg_dsn or test_server_dsn(state_dir())
    with scratch_database(server, "bench") as dsn:
        migrate_postgres(dsn)
        report = run(dsn, args.instances)
    if args.big:
        with scratch_database(server, "bench") as dsn:
            migrate_postgres(dsn)
            report.update(run_big(dsn, args.big))
    emit(report, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
