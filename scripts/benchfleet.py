"""What the agent benchmarks share: a private stack, a reconciled fleet, the timing loops.

``bench_agents.py`` and ``bench_vs_serve.py`` time users' agents end to end: a private local
Ray, a private embedded FalkorDB and a scratch, migrated PostgreSQL database (the registry),
with agents reconciled by a ``Tier0Manager`` and tasks routed by its router, as an
application would. Everything is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray

from seedcore_thin.config import Settings, state_dir
from seedcore_thin.graph.falkordb import MockGraphClient
from seedcore_thin.local.falkordb import start_falkordb, stop_falkordb
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.specs import AgentSpec, Resources

TRIVIAL = "seedcore_thin.examples.trivial:Trivial"


@dataclass(frozen=True)
class Stack:
    """Where the private graph server and the scratch registry database are."""

    graph_uri: str
    pg_dsn: str


@contextmanager
def private_stack(num_cpus: int) -> Iterator[Stack]:
    """A local Ray of ``num_cpus`` logical CPUs, FalkorDB and a migrated scratch database.

    Meanwhile stdout goes to stderr: Ray prints its workers' errors there from a thread of its
    own (Serve's shutdown causes some), and stdout must carry the result alone (``--json``)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield from _private_stack(num_cpus)


def _private_stack(num_cpus: int) -> Iterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix="scb", dir="/tmp"))  # short: unix socket paths
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp))
    try:
        graph_uri = start_falkordb(tmp / "graph")
        try:
            with scratch_database(test_server_dsn(state_dir()), "bench") as dsn:
                migrate_postgres(dsn)
                yield Stack(graph_uri, dsn)
        finally:
            stop_falkordb(tmp / "graph")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def agent_specs(
    prefix: str, n: int, skill: str, entrypoint: str, *, concurrency: int = 1
) -> list[AgentSpec]:
    """``n`` agents running ``entrypoint`` with one skill, 0.1 CPU each."""
    return [
        AgentSpec(
            agent_id=f"{prefix}-{i:02d}",
            organ_id="bench",
            skills=[skill],
            resources=Resources(num_cpus=0.1),
            entrypoint=entrypoint,
            max_concurrency=concurrency,
        )
        for i in range(n)
    ]


@contextmanager
def fleet(stack: Stack, specs: Sequence[AgentSpec], namespace: str) -> Iterator[Tier0Manager]:
    """A manager whose one reconcile pass started every agent (SystemExit otherwise); the
    manager and its private graph are closed after the block."""
    graph = MockGraphClient(specs, uri=stack.graph_uri)
    manager = Tier0Manager(
        Settings(pg_dsn=stack.pg_dsn, namespace=namespace),
        graph=graph,
        namespace=namespace,
        ready_timeout_s=120.0,
    )
    try:
        report = manager.reconcile_from_graph()
        if not report.ok:
            raise SystemExit(f"the fleet did not start: {report.to_json()}")
        yield manager
    finally:
        manager.close()
        graph.close()


def task_for(skill: str, i: int = 0, **data: Any) -> dict[str, Any]:
    """A routed task needing ``skill``, carrying a small payload."""
    return {"task_type": "bench", "required_skills": [skill], "data": {"i": i, **data}}


def latencies_ms(call: Callable[[int], object], n: int, warmup: int = 20) -> list[float]:
    """Wall time of ``n`` sequential calls in ms, after ``warmup`` untimed ones."""
    for i in range(warmup):
        call(i)
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def throughput(call: Callable[[int], object], callers: int, seconds: float) -> tuple[int, float]:
    """(calls completed, seconds) with ``callers`` threads calling for ``seconds``."""
    counts = [0] * callers
    errors: list[BaseException] = []
    go, stop = threading.Event(), threading.Event()

    def caller(k: int) -> None:
        go.wait()
        try:
            while not stop.is_set():
                call(k)
                counts[k] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(k,), daemon=True) for k in range(callers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    go.set()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    took = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts), took


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), by linear interpolation."""
    if len(samples) == 1:
        return float(samples[0])
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in ms, rounded for the report."""
    return {
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
    }
