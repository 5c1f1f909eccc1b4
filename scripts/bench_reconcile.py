"""Benchmark the reconciler: ``bench_reconcile.py [--json] [--agents 50]``.

- ``apply_50_s``: one ``reconcile()`` creating N agents from an embedded FalkorDB graph, with
  audit, lease and heartbeat relay in PostgreSQL, until every agent answers;
- ``raw_ray_50_s``: a plain loop creating the same N actors with the same options, until
  every one answers (same run, same Ray);
- ``apply_vs_raw``: their ratio (target <= 1.2);
- ``plan_10k_ms`` / ``plan_100k_ms``: ``plan()`` for 10,000 (100,000) desired vs as many
  actual records (targets <= 200 and <= 300);
- ``no_change_check_ms``: the watch loop's change check with N live agents, median
  (target <= 10); ``no_change_check_ms_100k`` the same with 100,000 more instances live in
  the registry (target <= 5), against ``fingerprint_check_ms_100k``, the baseline in the same
  run: the live part of the check as it was (an md5 over the whole ``active_instance``).

Uses a private local Ray, a scratch PostgreSQL database and a private FalkorDB; removes
everything it created.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from bench_registry import ADMIN_SQL, _ahead, _register
from benchkit import emit

from seedcore_thin import actors
from seedcore_thin.config import Settings, state_dir
from seedcore_thin.graph import upsert_agent
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.falkordb import start_falkordb, stop_falkordb
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.planner import Actual, Desired, plan
from seedcore_thin.registry import Registry
from seedcore_thin.specs import AgentSpec, Resources


def specs(n: int) -> list[AgentSpec]:
    return [
        AgentSpec(agent_id=f"bench-{i:03d}", organ_id="bench", skills=["echo"],
                  resources=Resources(num_cpus=0.1))
        for i in range(n)
    ]  # fmt: skip


def clear(ns: str) -> None:
    for space, name in actors.named_actors([ns]):
        actors.kill(name, space, wait_s=5)


def raw_ray(agents: list[AgentSpec], ns: str) -> float:
    """The baseline: create every actor, then wait until each answers."""
    start = time.perf_counter()
    handles = [actors.create_agent(s, ns) for s in agents]
    ray.get([h.describe.remote() for h in handles], timeout=600)
    return time.perf_counter() - start


def plan_ms(n: int = 10_000) -> float:
    """``plan()`` over n desired vs n actual: 5 % new, 5 % gone, 10 % changed."""
    desired = [Desired(f"a{i}", "ns", "h2" if i % 10 == 0 else "h1") for i in range(n)]
    actual = [Actual(f"a{i}", "ns", "h1", True) for i in range(n // 20, n + n // 20)]
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        plan(desired, actual, allow_mass_removal=True)
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def _median_ms(fn: object, runs: int = 50) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _checks_at_100k(manager: Tier0Manager, dsn: str) -> dict[str, float]:
    """The change check with 100,000 more live instances, and the old fingerprint's cost."""
    ids = [uuid.uuid4() for _ in range(100_000)]
    with Registry(dsn, max_size=2, timeout=60, extra_sql=[ADMIN_SQL]) as reg:
        epoch = reg.call("current_epoch")
        _register(dsn, epoch, ids)
        reg.beat_many(ids, epoch, now=_ahead())
        before = manager.change_token()
        check = _median_ms(manager.change_token)
        if manager.change_token() != before:
            raise SystemExit("the change token moved although nothing changed")
        fingerprint = _median_ms(lambda: reg.call("reconcile_live_fingerprint"), 10)
    return {
        "no_change_check_ms_100k": round(check, 2),
        "fingerprint_check_ms_100k": round(fingerprint, 1),
        "no_change_check_ratio_100k": round(fingerprint / check, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--agents", type=int, default=50)
    args = parser.parse_args(argv)
    n = args.agents
    agents = specs(n)
    tmp = tempfile.mkdtemp(prefix="scb", dir="/tmp")
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False, _temp_dir=tmp)
    graph_home = Path(tmp) / "graph"
    result: dict[str, float | int] = {"agents": n}
    try:
        graph = FalkorDBGraphClient(f"{start_falkordb(graph_home)}/bench")
        migrate_graph(graph)
        for s in agents:
            upsert_agent(graph, s)
        time.sleep(3)  # let Ray's worker prestart settle so neither side gets it for free
        with scratch_database(test_server_dsn(state_dir()), "bench") as dsn:
            migrate_postgres(dsn)
            raw_ns, apply_ns = f"raw-{uuid.uuid4().hex[:6]}", f"apply-{uuid.uuid4().hex[:6]}"
            result["raw_ray_50_s"] = round(raw_ray(agents, raw_ns), 2)
            clear(raw_ns)
            manager = Tier0Manager(
                Settings(pg_dsn=dsn, namespace=apply_ns), graph=graph, namespace=apply_ns,
                concurrency=64,
            )  # fmt: skip
            start = time.perf_counter()
            report = manager.reconcile_from_graph()
            result["apply_50_s"] = round(time.perf_counter() - start, 2)
            ok = sum(o.outcome == "succeeded" for o in report.outcomes)
            if ok != n:
                raise SystemExit(f"apply created {ok} of {n} agents: {report.to_json()}")
            result["apply_vs_raw"] = round(result["apply_50_s"] / result["raw_ray_50_s"], 3)
            checks = []
            manager.change_token()
            for _ in range(50):
                t = time.perf_counter()
                manager.change_token()
                checks.append((time.perf_counter() - t) * 1000)
            result["no_change_check_ms"] = round(statistics.median(checks), 2)
            result.update(_checks_at_100k(manager, dsn))
            manager.close()
            clear(apply_ns)
        result["plan_10k_ms"] = round(plan_ms(10_000), 1)
        result["plan_100k_ms"] = round(plan_ms(100_000), 1)
        graph.close()
    finally:
        stop_falkordb(graph_home)
        ray.shutdown()
    emit(result, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
