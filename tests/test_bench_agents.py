"""The pieces of the agent benchmarks that can be checked without running them.

``scripts/bench_agents.py`` and ``scripts/bench_vs_serve.py`` time the trivial example agent
(``seedcore_thin.examples.trivial:Trivial``); Ray Serve is only in the ``bench`` extra, so
the Serve benchmark must say how to get it where it is missing (the test virtualenv).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
import ray

from seedcore_thin.agent import AgentContext, HostedAgent

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module(name)


def test_the_trivial_agent_answers_through_its_host() -> None:
    context = AgentContext("trivial-00", "bench", "ns", "inst-1", skills=("trivial",))
    host = HostedAgent(context, "seedcore_thin.examples.trivial:Trivial", spec_hash="h")

    async def two_tasks() -> list[dict[str, object]]:
        assert (await host.start())["state"] == "alive"
        return [await host.handle({"task_type": "bench", "data": {"i": i}}) for i in (7, 8)]

    first, second = asyncio.run(two_tasks())
    assert first["status"] == "completed"
    assert first["result"] == {"agent": "trivial-00", "n": 1, "data": {"i": 7}}
    assert second["result"] == {"agent": "trivial-00", "n": 2, "data": {"i": 8}}


def test_the_serve_benchmark_says_how_to_get_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = script("bench_vs_serve", monkeypatch)
    monkeypatch.delattr(ray, "serve", raising=False)
    monkeypatch.setitem(sys.modules, "ray.serve", None)  # as where the extra is missing
    with pytest.raises(SystemExit, match=r"make bench.*\.venv-bench"):
        bench.import_serve()


def test_percentiles_of_the_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = script("benchfleet", monkeypatch)
    samples = [float(i) for i in range(1, 101)]
    assert fleet.summary(samples) == {"p50_ms": 50.5, "p99_ms": 99.01}
    assert fleet.summary([3.0]) == {"p50_ms": 3.0, "p99_ms": 3.0}
