"""Users' agents end to end: ``bench_agents.py [--json] [--calls 600]`` (issue 8).

- ``routed_p50_ms``/``routed_p99_ms``: a task routed and executed through
  ``Tier0Manager.execute_task_on_graph_best`` on a trivial user agent
  (``seedcore_thin.examples.trivial:Trivial``, reconciled from a private graph, registry in a
  scratch PostgreSQL database): validation, routing, dispatch, the hosted agent, the result;
- ``plain_p50_ms``/``plain_p99_ms``: the same class as a plain Ray actor
  (``ray.remote(Trivial)``), called with ``ray.get(actor.handle.remote(task))``, in the same
  run, measured in alternating rounds;
- ``hosted_p50_ms``/``hosted_p99_ms``: the agent's own actor called directly
  (``AgentActor.execute`` with a ready payload, no routing), which splits the overhead
  into hosting and routing; ``decision_us``: the caller's side without Ray (validation,
  routing decision, payload), median;
- ``overhead_ratio_p50`` (target <= 1.3) and ``overhead_ratio_p99``: routed over plain;
- the real model agent (``seedcore_thin.examples.embedder:Embedder``, skill ``embed``):
  ``embed_setup_s`` (its ``setup``: loading all-MiniLM-L6-v2 and encoding its labels, as
  the agent reports it), ``embed_apply_s`` (the reconcile pass that started it) and the
  per-task latency of a routed one-sentence ``embed`` task, beside the same class as a
  plain Ray actor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from typing import Any

import ray
from benchfleet import (
    TRIVIAL,
    agent_specs,
    fleet,
    latencies_ms,
    private_stack,
    summary,
    task_for,
)
from benchkit import emit

from seedcore_thin import actors
from seedcore_thin.agent import AgentContext, load_entrypoint
from seedcore_thin.tasks import TaskRequest

EMBEDDER = "seedcore_thin.examples.embedder:Embedder"
SENTENCE = "A forklift is blocking aisle seven of the north warehouse."


def plain_actor(entrypoint: str, agent_id: str, skill: str) -> Any:
    """The user's class as a plain Ray actor (0.1 CPU), its ``setup`` already run."""
    cls = load_entrypoint(entrypoint)
    handle: Any = ray.remote(cls).options(num_cpus=0.1).remote()
    context = AgentContext(agent_id, "bench", "plain", agent_id, skills=(skill,))
    ray.get(handle.setup.remote(context), timeout=300)
    return handle


def alternating(sides: dict[str, Any], calls: int, rounds: int) -> dict[str, list[float]]:
    """Sequential latencies of each side, measured in ``rounds`` alternating blocks."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, call in sides.items():
            samples[name] += latencies_ms(call, max(1, calls // rounds))
    return samples


def routed(manager: Any, skill: str, **data: Any) -> Any:
    """One task through the manager; raises unless the agent completed it."""

    def call(i: int) -> None:
        out = manager.execute_task_on_graph_best(task_for(skill, i, **data))
        if out.result["status"] != "completed":
            raise RuntimeError(f"task failed: {out.result}")

    return call


def direct(handle: Any, skill: str, **data: Any) -> Any:
    """The same task straight to a plain actor's ``handle``."""
    return lambda i: ray.get(handle.handle.remote(task_for(skill, i, **data)), timeout=60)


def trivial_figures(stack: Any, calls: int, rounds: int) -> dict[str, Any]:
    ns = f"agents-{uuid.uuid4().hex[:6]}"
    with fleet(stack, agent_specs("trivial", 1, "trivial", TRIVIAL), ns) as manager:
        plain = plain_actor(TRIVIAL, "plain-trivial", "trivial")
        hosted: Any = actors.lookup("trivial-00", ns)
        payload = TaskRequest.parse(task_for("trivial")).payload()
        sides = {
            "routed": routed(manager, "trivial"),
            "hosted": lambda i: ray.get(hosted.execute.remote(payload), timeout=60),
            "plain": direct(plain, "trivial"),
        }
        samples = alternating(sides, calls, rounds)
        decision_us = decision_cost_us(manager, task_for("trivial"))
        ray.kill(plain)
    out: dict[str, Any] = {"calls": len(samples["routed"])}
    for name, times in samples.items():
        stats = summary(times)
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = stats["p50_ms"], stats["p99_ms"]
    out["decision_us"] = decision_us
    out["overhead_ratio_p50"] = round(out["routed_p50_ms"] / out["plain_p50_ms"], 3)
    out["overhead_ratio_p99"] = round(out["routed_p99_ms"] / out["plain_p99_ms"], 3)
    return out


def decision_cost_us(manager: Any, task: dict[str, Any], n: int = 3000) -> float:
    """The caller's side of a routed task without Ray: validation, routing decision, payload
    (median of ``n``, in microseconds)."""

    def once() -> None:
        request = TaskRequest.parse(task)
        manager.router.route(request)
        request.payload()

    times = latencies_ms(lambda i: once(), n, warmup=200)
    return round(statistics.median(times) * 1000.0, 1)


def embedder_figures(stack: Any, calls: int) -> dict[str, Any]:
    ns = f"embed-{uuid.uuid4().hex[:6]}"
    specs = agent_specs("embedder", 1, "embed", EMBEDDER)
    began = time.perf_counter()
    with fleet(stack, specs, ns) as manager:
        apply_s = time.perf_counter() - began
        info = actors.ask(actors.lookup(specs[0].agent_id, ns), "describe", timeout_s=30)
        plain = plain_actor(EMBEDDER, "plain-embedder", "embed")
        sides = {
            "embed_routed": routed(manager, "embed", text=SENTENCE),
            "embed_plain": direct(plain, "embed", text=SENTENCE),
        }
        samples = alternating(sides, calls, 2)
        ray.kill(plain)
    out: dict[str, Any] = {
        "embed_setup_s": round(float(info["setup_s"]), 2),
        "embed_apply_s": round(apply_s, 2),
        "embed_calls": len(samples["embed_routed"]),
    }
    for name, times in samples.items():
        stats = summary(times)
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = stats["p50_ms"], stats["p99_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--calls", type=int, default=600, help="timed trivial tasks per side")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--embed-calls", type=int, default=100, help="timed embed tasks")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"ray": ray.__version__}
    with private_stack(num_cpus=4) as stack:
        result.update(trivial_figures(stack, args.calls, args.rounds))
        result.update(embedder_figures(stack, args.embed_calls))
    result["targets"] = {"overhead_ratio_p50": "<= 1.3"}
    result["meets_targets"] = result["overhead_ratio_p50"] <= 1.3
    emit(result, as_json=args.json)
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
