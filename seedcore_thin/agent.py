"""The agent contract, and the host that runs a user's agent without trusting it.

An agent is the user's own class, named in the graph as ``Agent.entrypoint``
(``package.module:ClassName``). It implements::

    class Summarizer:
        def setup(self, context): ...          # once, before any task: load the model here
        def handle(self, task): ...            # each routed task (may be ``async def``)
        def health(self): return {}            # optional: extra fields for the probe
        def shutdown(self): ...                # optional: after in-flight tasks drained

:class:`HostedAgent` wraps one instance of that class and treats it as hostile to uptime:
an import error or a raising ``setup`` leaves the agent ``failed`` (never routable) with the
error type and message; a raising ``handle`` becomes a failed task result, never a dead
host; ``shutdown`` waits for in-flight tasks up to a grace period. The host has no Ray in it,
so a dedicated actor hosts one agent and a pooled host actor many, with the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import re
import threading
import time
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

#: ``package.module:ClassName`` (the class may be nested: ``mod:Outer.Inner``).
ENTRYPOINT_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

#: What ``--explain`` and the docs call an agent whose spec names no entrypoint.
BUILTIN_ECHO = "builtin echo agent"

AgentState = Literal["starting", "alive", "failed", "draining", "dead"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class AgentContext:
    """What ``setup`` receives: who the agent is and the settings the graph gave it."""

    agent_id: str
    organ_id: str
    namespace: str
    instance_id: str
    skills: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)


class EchoAgent:
    """The built-in agent when the spec names no entrypoint: echoes the task's ``data``."""

    def setup(self, context: AgentContext) -> None:
        self.agent_id = context.agent_id

    def handle(self, task: Mapping[str, Any]) -> Any:
        return task.get("data")


def load_entrypoint(entrypoint: str | None) -> type:
    """The class an entrypoint names (``None``: :class:`EchoAgent`); raises on any problem."""
    if not entrypoint:
        return EchoAgent
    if not ENTRYPOINT_RE.match(entrypoint):
        raise ValueError(f"entrypoint {entrypoint!r} is not 'package.module:ClassName'")
    module_name, _, qualname = entrypoint.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not inspect.isclass(target) or not callable(getattr(target, "handle", None)):
        raise TypeError(f"entrypoint {entrypoint!r} is not a class with a handle() method")
    return target


def error_of(exc: BaseException) -> dict[str, str]:
    """An exception as the ``{"type", "message"}`` pair reports, audit and results carry."""
    message = str(exc).strip() or repr(exc)
    return {"type": type(exc).__name__, "message": message[:2000]}


#: Threads for the users' plain (not ``async``) methods, shared by the agents of a process;
#: made on demand. Each agent's in-flight limit bounds how many a hung agent can hold.
_THREADS = ThreadPoolExecutor(max_workers=256, thread_name_prefix="agent")
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def on_loop(coro: Coroutine[Any, Any, _T], *, wait: bool = True) -> _T | None:
    """Run a coroutine on this process's agent event loop (a thread started on first use)
    from a thread of a threaded actor; its value, or None without ``wait``."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="agent-loop", daemon=True).start()
    future = asyncio.run_coroutine_threadsafe(coro, _loop)
    return future.result() if wait else None


async def _call(fn: Any, *args: Any) -> Any:
    """Await an ``async def``; run a plain function in a thread so the host stays responsive."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.get_running_loop().run_in_executor(_THREADS, fn, *args)
    if inspect.isawaitable(result):  # a plain def that returned a coroutine
        return await result
    return result


class HostedAgent:
    """One running agent: its lifecycle state, counters and in-flight limit.

    Every method is safe to call from an asyncio event loop (a Ray async actor) and never
    raises because of what the user's code did.
    """

    def __init__(
        self,
        context: AgentContext,
        entrypoint: str | None,
        *,
        spec_hash: str,
        max_in_flight: int = 1,
    ) -> None:
        self.context = context
        self.entrypoint = entrypoint
        self.spec_hash = spec_hash
        self.state: AgentState = "starting"
        self.error: dict[str, str] | None = None
        self.setup_s: float | None = None
        self.started_at = time.time()
        self.tasks_done = 0
        self.tasks_failed = 0
        self.in_flight = 0
        self._slots = asyncio.Semaphore(max(1, max_in_flight))
        self._count = threading.Lock()  # tasks may run on several threads (handle_here)
        self._impl: Any = None
        self._setup: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self, wait_s: float | None = None) -> dict[str, Any]:
        """Import the class, build it, run ``setup`` once; ``alive`` or ``failed`` after
        (or still ``starting`` when ``wait_s`` ran out first: the setup goes on).

        Idempotent: a second call (a reconciler that lost patience, then came back) waits
        for the same setup instead of running another."""
        if self._setup is None:
            self._setup = asyncio.ensure_future(self._run_setup())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._setup), wait_s)
        return self.describe()

    async def _run_setup(self) -> None:
        began = time.monotonic()
        try:
            # importing and building run in a thread too: a heavy import must not stall probes
            impl = await _call(lambda: load_entrypoint(self.entrypoint)())
            setup = getattr(impl, "setup", None)
            if callable(setup):
                await _call(setup, self.context)
        except BaseException as exc:  # user code: anything, even SystemExit, stays here
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.state, self.error = "failed", error_of(exc)
        else:
            self._impl, self.state = impl, "alive"
        self.setup_s = time.monotonic() - began

    async def stop(self, grace_s: float) -> dict[str, Any]:
        """Stop taking tasks, let in-flight ones finish (up to ``grace_s``), then ``shutdown``."""
        if self.state in ("dead", "draining"):
            return self.describe()
        was_alive = self.state == "alive"
        self.state = "draining"
        deadline = time.monotonic() + max(0.0, grace_s)
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        shutdown = getattr(self._impl, "shutdown", None)
        if was_alive and callable(shutdown):
            try:
                await asyncio.wait_for(_call(shutdown), timeout=max(1.0, grace_s))
            except Exception as exc:
                self.error = error_of(exc)
        self.state = "dead"
        return self.describe()

    # ------------------------------------------------------------------ work
    async def handle(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """Run one task; every outcome is a result dict, ``status`` completed or failed."""
        if self.state != "alive":
            return self._not_ready(task)
        async with self._slots:
            self._counted(+1)
            try:
                value = await _call(self._impl.handle, dict(task))
                return self._finished(task, value)
            except Exception as exc:
                return self._finished(task, error=exc)
            finally:
                self._counted(-1)

    def handle_here(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """``handle`` for a caller on a thread of its own (a threaded actor, whose
        ``max_concurrency`` is the in-flight limit): a plain ``handle`` runs right on that
        thread, with no hop; an ``async def`` one on the process's agent event loop."""
        if self.state != "alive":
            return self._not_ready(task)
        self._counted(+1)
        try:
            fn, payload = self._impl.handle, dict(task)
            value = on_loop(fn(payload)) if inspect.iscoroutinefunction(fn) else fn(payload)
            return self._finished(task, value)
        except Exception as exc:
            return self._finished(task, error=exc)
        finally:
            self._counted(-1)

    def _counted(self, step: int) -> None:
        with self._count:
            self.in_flight += step

    def _not_ready(self, task: Mapping[str, Any]) -> dict[str, Any]:
        why = f"agent is {self.state}" + (
            f": {self.error['message']}" if self.error and self.state == "failed" else ""
        )
        return self._result(task, "failed", error={"type": "AgentNotReady", "message": why})

    def _finished(
        self, task: Mapping[str, Any], value: Any = None, error: Exception | None = None
    ) -> dict[str, Any]:
        """The task's result; a value JSON cannot carry across processes is a failure."""
        if error is None:
            try:
                json.dumps(value, allow_nan=False)
            except Exception as exc:
                error = exc
        with self._count:
            if error is None:
                self.tasks_done += 1
            else:
                self.tasks_failed += 1
        if error is not None:
            return self._result(task, "failed", error=error_of(error))
        return self._result(task, "completed", result=value)

    async def health(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """The probe: lifecycle state, counters, and the agent's own ``health()`` fields."""
        out = self.describe()
        probe = getattr(self._impl, "health", None)
        if self.state == "alive" and callable(probe):
            try:
                extra = await asyncio.wait_for(_call(probe), timeout=timeout_s)
                out["health"] = dict(extra or {})
            except Exception as exc:
                out["health"] = {"error": error_of(exc)}
        return out

    def describe(self) -> dict[str, Any]:
        """Who this agent is and how it is doing (read by reconciler, relay and router)."""
        return {
            "agent_id": self.context.agent_id,
            "instance_id": self.context.instance_id,
            "namespace": self.context.namespace,
            "spec_hash": self.spec_hash,
            "entrypoint": self.entrypoint or BUILTIN_ECHO,
            "state": self.state,
            "error": self.error,
            "setup_s": self.setup_s,
            "started_at": self.started_at,
            "tasks_done": self.tasks_done,
            "tasks_failed": self.tasks_failed,
            "in_flight": self.in_flight,
        }

    def _result(self, task: Mapping[str, Any], status: str, **extra: Any) -> dict[str, Any]:
        return {
            "status": status,
            "agent_id": self.context.agent_id,
            "instance_id": self.context.instance_id,
            "task_type": task.get("task_type"),
            **extra,
        }
