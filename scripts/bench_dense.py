"""Benchmark dense fleets: ``bench_dense.py [--json] [--pooled 1000] [--dedicated 50]``.

- ``pooled_live_s_1000``: one ``reconcile()`` of N pooled echo agents (100 to a host by
  default) until every one is in ``active_instance`` (target <= 60 s, times the machine
  factor);
- ``pooled_mib_per_agent``: the unique memory (USS, from ``/proc/PID/smaps_rollup``) of the
  Ray worker processes hosting them, summed and divided by N (target <= 2 MiB);
- ``dedicated_live_s_50`` and ``dedicated_mib_per_agent``: the same for M dedicated agents,
  one Ray actor each, in the same run;
- ``routing_p99_ratio_pooled``: p99 of routed tasks (decision and dispatch, through the
  manager's router) to pooled agents over the same to dedicated agents (target <= 1.2).

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
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from benchkit import emit, machine_factor

from seedcore_thin import actors
from seedcore_thin.config import Settings, state_dir
from seedcore_thin.graph import upsert_specs
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.falkordb import start_falkordb, stop_falkordb
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.registry import Registry
from seedcore_thin.specs import AgentSpec

#: Measured on this machine against the reference one (docs/benchmarks.md).
TARGETS = {"pooled_live_s_1000": 60.0, "pooled_mib_per_agent": 2.0, "routing_p99_ratio": 1.2}
TASKS = 400


def fleet(kind: str, n: int, namespace: str) -> list[AgentSpec]:
    """N echo agents of one placement, each in ``namespace``, all with skill ``kind``."""
    return [
        AgentSpec.model_validate({
            "agent_id": f"{kind}-{i:04d}", "organ_id": kind, "skills": [kind],
            "namespace": namespace, "resources": {"num_cpus": 0.01}, "placement": kind,
        })
        for i in range(n)
    ]  # fmt: skip


def uss_mib(title: str) -> tuple[float, int]:
    """Summed USS (MiB) of the processes whose title starts with ``ray::<title>``, and how
    many there are (Linux: private clean + dirty pages, as psutil's ``uss``)."""
    total_kib, count = 0, 0
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            if not (proc / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                continue
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith(("Private_Clean:", "Private_Dirty:", "Private_Hugetlb:")):
                    total_kib += int(line.split()[1])
            count += 1
        except OSError:  # gone meanwhile
            continue
    return total_kib / 1024, count


def live_count(dsn: str, namespace: str) -> int:
    with Registry(dsn) as reg:
        return sum(r.namespace == namespace for r in reg.active_instances())


def reconcile_until_live(manager: Tier0Manager, dsn: str, namespace: str, n: int) -> float:
    """Seconds from the start of a pass until all ``n`` agents are in active_instance."""
    start = time.perf_counter()
    report = manager.reconcile_from_graph()
    ok = sum(o.outcome == "succeeded" for o in report.outcomes)
    if ok != n:
        raise SystemExit(f"apply started {ok} of {n} agents: {report.to_json()['status']}")
    while live_count(dsn, namespace) < n:
        if time.perf_counter() - start > 600:
            raise SystemExit(f"{namespace}: not all {n} agents live within 600 s")
        time.sleep(0.2)
    return time.perf_counter() - start


def routing_p99_ms(manager: Tier0Manager, skill: str) -> float:
    task = {"task_type": "bench", "required_skills": [skill], "data": {"x": 1}}
    for _ in range(20):  # warm: candidate cache, handles
        manager.execute_task_on_graph_best(task)
    times = []
    for _ in range(TASKS):
        t = time.perf_counter()
        result = manager.execute_task_on_graph_best(task)
        times.append((time.perf_counter() - t) * 1000)
        assert result.result["status"] == "completed", result.result
    return statistics.quantiles(times, n=100)[98]


def run(n_pooled: int, n_dedicated: int, graph: FalkorDBGraphClient, dsn: str) -> dict[str, Any]:
    result: dict[str, Any] = {"pooled_agents": n_pooled, "dedicated_agents": n_dedicated}
    run_id = uuid.uuid4().hex[:6]
    spaces = {"pooled": f"pooled-{run_id}", "dedicated": f"dedicated-{run_id}"}
    counts = {"pooled": n_pooled, "dedicated": n_dedicated}
    upsert_specs(graph, [s for k, ns in spaces.items() for s in fleet(k, counts[k], ns)])
    managers = {
        kind: Tier0Manager(Settings(pg_dsn=dsn, namespace=ns), graph=graph, namespace=ns,
                           concurrency=64, allow_mass_removal=True)
        for kind, ns in spaces.items()
    }  # fmt: skip
    try:
        for kind, title in (("pooled", "AgentHost"), ("dedicated", "AgentActor")):
            seconds = reconcile_until_live(managers[kind], dsn, spaces[kind], counts[kind])
            mib, processes = uss_mib(title)
            result[f"{kind}_live_s_{counts[kind]}"] = round(seconds, 2)
            result[f"{kind}_processes"] = processes
            result[f"{kind}_mib_per_agent"] = round(mib / counts[kind], 3)
        router = managers["pooled"]  # one router: both sets are in its live set
        p99 = {kind: routing_p99_ms(router, kind) for kind in spaces}
        result["routing_p99_ms_pooled"] = round(p99["pooled"], 3)
        result["routing_p99_ms_dedicated"] = round(p99["dedicated"], 3)
        result["routing_p99_ratio_pooled"] = round(p99["pooled"] / p99["dedicated"], 3)
    finally:
        for manager in managers.values():
            manager.close()
        for ns in spaces.values():
            for space, name in actors.named_actors([ns]):
                actors.kill(name, space, wait_s=5)
    factor = result["machine_factor"] = machine_factor()
    limit = TARGETS["pooled_live_s_1000"] * factor
    result["targets"] = {
        "pooled_live_s_1000": f"<= {limit:.1f} (60 x {factor})",
        "pooled_mib_per_agent": "<= 2",
        "routing_p99_ratio_pooled": "<= 1.2",
    }
    result["meets_targets"] = bool(
        result.get(f"pooled_live_s_{n_pooled}", 1e9) <= limit
        and result["pooled_mib_per_agent"] <= TARGETS["pooled_mib_per_agent"]
        and result["routing_p99_ratio_pooled"] <= TARGETS["routing_p99_ratio"]
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pooled", type=int, default=1000)
    parser.add_argument("--dedicated", type=int, default=50)
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="scd", dir="/tmp")
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False, _temp_dir=tmp)
    graph_home = Path(tmp) / "graph"
    try:
        graph = FalkorDBGraphClient(f"{start_falkordb(graph_home)}/bench")
        migrate_graph(graph)
        with scratch_database(test_server_dsn(state_dir()), "bench") as dsn:
            migrate_postgres(dsn)
            result = run(args.pooled, args.dedicated, graph, dsn)
        graph.close()
    finally:
        stop_falkordb(graph_home)
        ray.shutdown()
    emit(result, as_json=args.json)
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
