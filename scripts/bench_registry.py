"""Benchmark the registry's hot paths on a fresh database it creates and drops.

``bench_registry.py --json [-n 10000]`` prints one JSON object: beats per second one call
at a time and batched (``beat_many`` with a uuid[]), their ratio, one expire pass that
expires 10 % of the fleet, and reading the whole ``active_instance`` view through the
client into dataclasses (``active_instance_server_ms``: the view computed in the database
alone). Targets on the 2-core dev machine: batched >= 50,000/s and >= 10x single,
active_instance <= 50 ms, expire <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from benchkit import median_ms
from psycopg.types.json import Jsonb

from seedcore_thin.config import state_dir
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.queries import project_root, sql
from seedcore_thin.registry import Registry

BATCH = 1000
ROUNDS = 5


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


def run(dsn: str, n: int) -> dict[str, float | int]:
    ids = [uuid.uuid4() for _ in range(n)]
    admin_sql = project_root() / "tests" / "sql" / "admin.sql"  # beat, active_instance_count
    with Registry(dsn, max_size=2, timeout=30, extra_sql=[admin_sql]) as reg:
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

        active_ms = median_ms(reg.active_instances)
        view_ms = median_ms(lambda: reg.call("active_instance_count"))
        if len(reg.active_instances()) != n:
            raise SystemExit("active_instance does not list every instance")

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
        "active_instance_ms": round(active_ms, 2),
        "active_instance_server_ms": round(view_ms, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-n", "--instances", type=int, default=10_000)
    parser.add_argument(
        "--pg-dsn",
        help="server to create the scratch database on (default: the test server)",
    )
    args = parser.parse_args()
    server = args.pg_dsn or test_server_dsn(state_dir())
    with scratch_database(server, "bench") as dsn:
        migrate_postgres(dsn)
        report = run(dsn, args.instances)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
