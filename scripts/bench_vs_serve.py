"""Side by side with Ray Serve: ``bench_vs_serve.py [--json] [--agents 4] [--callers 8]``.

The same trivial user class (``seedcore_thin.examples.trivial:Trivial``) deployed twice on
one local Ray, in one run, with the same number of replicas, CPU share (0.1 CPU each) and
per-replica concurrency limit (Serve's default ``max_ongoing_requests``, 5):

- ours: N agents declared in a private graph, started by ``Tier0Manager.reconcile_from_graph``
  (registry in a scratch PostgreSQL database), tasks sent with
  ``execute_task_on_graph_best({task_type, required_skills: [skill], data})``;
- Serve: a deployment of N replicas wrapping the class (``setup`` once in ``__init__``,
  ``handle`` in ``__call__``), called through its ``DeploymentHandle`` as
  ``handle.remote(task).result()``; no HTTP proxy.

Figures, end to end from the caller: p50 and p99 of sequential tasks, and throughput with
``--callers`` threads. Both sides stay deployed throughout and are measured in alternating
rounds, so a neighbour's load on a shared machine hits both alike. Prints the raw figures
and ``p50_ratio_vs_serve``, ``p99_ratio_vs_serve``, ``throughput_ratio_vs_serve`` (ours over
Serve's). Targets (issue 11): p50 ratio <= 1.2, throughput ratio >= 1.

Ray Serve is a benchmark-only dependency (the ``bench`` extra); ``make bench`` runs this
script from ``.venv-bench``, never from the test virtualenv.
"""

from __future__ import annotations

import argparse
import sys
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
    throughput,
)
from benchkit import emit

SKILL = "trivial"
SERVE_MISSING = (
    "Ray Serve is not installed here. It is a benchmark-only dependency: run `make bench` "
    "(it builds .venv-bench with the `bench` extra), or `pip install -e '.[bench]'` into a "
    "virtualenv of its own (never the test one: Serve's packages change how Ray starts)."
)


def import_serve() -> Any:
    """``ray.serve``, or SystemExit saying how to get it."""
    try:
        from ray import serve
    except ImportError as exc:
        raise SystemExit(f"{SERVE_MISSING}\n({exc})") from None
    return serve


def deploy_serve(serve: Any, replicas: int, concurrency: int) -> Any:
    """The trivial class as a Serve deployment of ``replicas``; its ``DeploymentHandle``."""
    from seedcore_thin.agent import AgentContext
    from seedcore_thin.examples.trivial import Trivial

    @serve.deployment(
        num_replicas=replicas,
        max_ongoing_requests=concurrency,
        ray_actor_options={"num_cpus": 0.1},
    )
    class TrivialReplica:
        def __init__(self) -> None:
            me = f"serve-{uuid.uuid4().hex[:6]}"
            context = AgentContext(me, "bench", "serve", me, skills=(SKILL,))
            self.agent = Trivial()
            self.agent.setup(context)

        def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
            return self.agent.handle(task)

    serve.start(proxy_location="Disabled")
    app = TrivialReplica.bind()  # type: ignore[attr-defined]
    return serve.run(app, name="bench_trivial", route_prefix=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--agents", type=int, default=4, help="agents = Serve replicas")
    parser.add_argument("--callers", type=int, default=8, help="threads for throughput")
    parser.add_argument("--calls", type=int, default=600, help="sequential calls per side")
    parser.add_argument("--seconds", type=float, default=9.0, help="throughput time per side")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=5, help="per agent and replica")
    args = parser.parse_args(argv)
    serve = import_serve()
    result: dict[str, Any] = {
        "agents": args.agents,
        "callers": args.callers,
        "concurrency_per_replica": args.concurrency,
        "ray": ray.__version__,
    }
    with private_stack(num_cpus=4) as stack:
        ns = f"vs-serve-{uuid.uuid4().hex[:6]}"
        specs = agent_specs("trivial", args.agents, SKILL, TRIVIAL, concurrency=args.concurrency)
        with fleet(stack, specs, ns) as manager:
            handle = deploy_serve(serve, args.agents, args.concurrency)
            try:

                def ours(i: int) -> None:
                    out = manager.execute_task_on_graph_best(task_for(SKILL, i))
                    if out.result["status"] != "completed":
                        raise RuntimeError(f"task failed: {out.result}")

                def theirs(i: int) -> None:
                    out = handle.remote(task_for(SKILL, i)).result()
                    if not isinstance(out, dict):
                        raise RuntimeError(f"unexpected answer: {out!r}")

                result.update(compare(ours, theirs, args))
            finally:
                serve.shutdown()
    result["targets"] = {"p50_ratio_vs_serve": "<= 1.2", "throughput_ratio_vs_serve": ">= 1"}
    result["meets_targets"] = (
        result["p50_ratio_vs_serve"] <= 1.2 and result["throughput_ratio_vs_serve"] >= 1.0
    )
    emit(result, as_json=args.json)
    return 0 if result["meets_targets"] else 1


def compare(ours: Any, theirs: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Latency and throughput of both sides, measured in alternating rounds."""
    sides = {"ours": ours, "serve": theirs}
    samples: dict[str, list[float]] = {k: [] for k in sides}
    done = {k: 0 for k in sides}
    took = {k: 0.0 for k in sides}
    per_round = max(1, args.calls // args.rounds)
    for _ in range(args.rounds):
        for name, call in sides.items():
            samples[name] += latencies_ms(call, per_round)
        for name, call in sides.items():
            calls, seconds = throughput(call, args.callers, args.seconds / args.rounds)
            done[name] += calls
            took[name] += seconds
    out: dict[str, Any] = {"calls": per_round * args.rounds}
    for name in sides:
        stats = summary(samples[name])
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = stats["p50_ms"], stats["p99_ms"]
        out[f"{name}_throughput_per_s"] = round(done[name] / took[name], 1)
    out["p50_ratio_vs_serve"] = round(out["ours_p50_ms"] / out["serve_p50_ms"], 3)
    out["p99_ratio_vs_serve"] = round(out["ours_p99_ms"] / out["serve_p99_ms"], 3)
    out["throughput_ratio_vs_serve"] = round(
        out["ours_throughput_per_s"] / out["serve_throughput_per_s"], 3
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
