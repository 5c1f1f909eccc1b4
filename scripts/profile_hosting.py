"""Where a routed task's time goes: ``profile_hosting.py [--json] [--calls 900]``.

Splits ``bench_agents.py``'s overhead over a plain actor into its pieces, in one run, by
calling the trivial user class through variants of an actor (p50 of sequential calls, in
alternating rounds) and by the driver thread's CPU time per call:

- ``plain``: ``ray.remote(Trivial)``; ``async_direct``: an async actor calling ``handle``;
  ``async_thread``: the same through ``run_in_executor`` (as ``HostedAgent`` does);
  ``hosted``: the agent's real actor (``AgentActor.execute``); ``threaded_hosted``: the
  same bookkeeping on a threaded actor with a probe concurrency group (the suggested shape);
  ``routed``: ``execute_task_on_graph_best``;
- ``*_cpu_ms``: the driver thread's CPU per call for a ready payload, a fresh one
  (``TaskRequest.parse`` + ``payload()``), and the routed call.

A diagnostic for whoever changes ``actors.AgentActor`` or ``agent.HostedAgent``; not part of
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import ray
from benchfleet import TRIVIAL, agent_specs, fleet, private_stack, task_for
from benchkit import emit

from seedcore_thin import actors
from seedcore_thin.agent import AgentContext
from seedcore_thin.examples.trivial import Trivial
from seedcore_thin.tasks import TaskRequest

CONTEXT = AgentContext("variant", "bench", "plain", "variant", skills=("trivial",))


class WithAgent:
    def __init__(self) -> None:
        self.agent = Trivial()
        self.agent.setup(CONTEXT)


class AsyncDirect(WithAgent):
    async def handle(self, task: Mapping[str, Any]) -> Any:
        return self.agent.handle(task)


class AsyncThread(WithAgent):
    async def handle(self, task: Mapping[str, Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.agent.handle, task)


class ThreadedHosted(WithAgent):
    """``HostedAgent``'s bookkeeping without an event loop: a slot, counters, the JSON check
    and the result dict, on Ray's own threads."""

    def __init__(self, limit: int = 5) -> None:
        super().__init__()
        self.slots, self.lock = threading.BoundedSemaphore(limit), threading.Lock()
        self.in_flight = self.done = 0

    def handle(self, task: Mapping[str, Any]) -> Any:
        with self.slots:
            with self.lock:
                self.in_flight += 1
            try:
                value = self.agent.handle(dict(task))
                json.dumps(value, allow_nan=False)
            finally:
                with self.lock:
                    self.in_flight -= 1
        self.done += 1
        return {"status": "completed", "agent_id": "variant", "result": value}

    @ray.method(concurrency_group="probe")
    def ping(self) -> str:
        return "variant"


def timed(call: Callable[[int], object], n: int) -> tuple[list[float], list[float]]:
    """Wall and driver-thread CPU time of ``n`` sequential calls, in ms (after a warm-up)."""
    for i in range(20):
        call(i)
    wall, cpu = [], []
    for i in range(n):
        w, c = time.perf_counter(), time.thread_time()
        call(i)
        wall.append((time.perf_counter() - w) * 1000.0)
        cpu.append((time.thread_time() - c) * 1000.0)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--calls", type=int, default=900, help="per variant")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    one = {"num_cpus": 0.1}
    with private_stack(num_cpus=4) as stack:
        ns = f"profile-{uuid.uuid4().hex[:6]}"
        with fleet(stack, agent_specs("trivial", 1, "trivial", TRIVIAL), ns) as manager:
            plain: Any = ray.remote(Trivial).options(**one).remote()
            ray.get(plain.setup.remote(CONTEXT))
            direct: Any = ray.remote(AsyncDirect).options(**one).remote()
            thread: Any = ray.remote(AsyncThread).options(**one).remote()
            threaded: Any = (
                ray.remote(concurrency_groups={"probe": 4})(ThreadedHosted)  # type: ignore[call-overload]
                .options(**one, max_concurrency=9)
                .remote()
            )
            hosted: Any = actors.lookup("trivial-00", ns)
            ready = TaskRequest.parse(task_for("trivial")).payload()

            def fresh(i: int) -> dict[str, Any]:
                return TaskRequest.parse(task_for("trivial", i)).payload()

            variants: dict[str, Callable[[int], object]] = {
                "plain": lambda i: ray.get(plain.handle.remote(ready)),
                "async_direct": lambda i: ray.get(direct.handle.remote(ready)),
                "async_thread": lambda i: ray.get(thread.handle.remote(ready)),
                "hosted": lambda i: ray.get(hosted.execute.remote(ready)),
                "hosted_fresh_payload": lambda i: ray.get(hosted.execute.remote(fresh(i))),
                "threaded_hosted": lambda i: ray.get(threaded.handle.remote(ready)),
                "routed": lambda i: manager.execute_task_on_graph_best(task_for("trivial", i)),
            }
            wall: dict[str, list[float]] = {k: [] for k in variants}
            cpu: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(args.rounds):
                for name, call in variants.items():
                    w, c = timed(call, max(1, args.calls // args.rounds))
                    wall[name] += w
                    cpu[name] += c
    result: dict[str, Any] = {}
    for name in variants:
        result[f"{name}_p50_ms"] = round(statistics.median(wall[name]), 3)
    for name in ("hosted", "hosted_fresh_payload", "routed"):
        result[f"{name}_cpu_ms"] = round(statistics.median(cpu[name]), 3)
    emit(result, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
