"""Send a task to the best qualified live agent, never past a guardrail, and say why.

Who qualifies is decided by the graph (``cypher/queries/route_candidates.cypher``: skills,
models, organ, GPUs, policies); who is alive by PostgreSQL (``active_instance``, current
epoch only) or, when the registry is down, by Ray's named actors. Python only intersects
the two, picks the least busy agent and dispatches. The reasons behind a refusal come from
``route_explain.cypher`` plus what only this process knows (not live, cooling down).

Caching: the candidate list of a task shape is kept until the desired-state version changes;
the live set is re-read at most every ``live_refresh_s``, the version at most every
``version_check_s`` (so a change in the graph or the fleet is noticed within that time).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from seedcore_thin import actors
from seedcore_thin.config import default_namespace
from seedcore_thin.errors import DispatchFailed, NoQualifiedAgent, RegistryUnavailable
from seedcore_thin.graph import GraphClient
from seedcore_thin.tasks import TaskRequest, TaskShape, shape_params

log = logging.getLogger(__name__)

#: How many Ray named-actor lookups one round of a registry-down choice makes at most.
_RAY_LOOKUP_BATCH = 8

#: Where a live instance was learned from.
SOURCE_REGISTRY = "registry"
SOURCE_RAY = "ray"


@dataclass(frozen=True)
class Candidate:
    """An agent the graph says qualifies for a task shape (liveness not yet known)."""

    agent_id: str
    organ_id: str
    namespace: str | None


def candidates_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """``route_candidates`` answers one row of parallel lists (cheaper to parse than rows)."""
    out: list[Candidate] = []
    for row in rows:
        ids, organs, namespaces = row["agent_ids"], row["organ_ids"], row["namespaces"]
        out += [
            Candidate(str(a), str(o), str(n) or None)
            for a, o, n in zip(ids, organs, namespaces, strict=True)
        ]
    return out


@dataclass(frozen=True)
class LiveInstance:
    """One running instance of an agent, as the registry or Ray reports it."""

    agent_id: str
    instance_id: str
    actor_name: str
    namespace: str
    epoch: str | None = None
    source: str = SOURCE_REGISTRY


@dataclass(frozen=True)
class RoutingDecision:
    """Which agent got the task and why; ``latency_ms`` is the decision alone."""

    task_id: str
    agent_id: str
    instance_id: str
    organ_id: str
    actor_name: str
    namespace: str
    live_source: str
    why: str
    latency_ms: float
    qualified: int
    live_qualified: int
    cached: bool
    failed_attempts: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "agent_id": self.agent_id,
            "instance_id": self.instance_id,
            "organ_id": self.organ_id,
            "actor_name": self.actor_name,
            "namespace": self.namespace,
            "live_source": self.live_source,
            "why": self.why,
            "latency_ms": round(self.latency_ms, 3),
            "qualified": self.qualified,
            "live_qualified": self.live_qualified,
            "cached": self.cached,
            "failed_attempts": [list(a) for a in self.failed_attempts],
        }


@dataclass(frozen=True)
class RoutedResult:
    """What ``execute`` returned, with the decision that sent it there."""

    result: Any
    decision: RoutingDecision
    total_ms: float


class LiveSource(Protocol):
    """Who is alive now, by agent id; raises RegistryUnavailable when it cannot tell."""

    def read(self) -> Mapping[str, LiveInstance]: ...


class RegistryLive:
    """The ``active_instance`` view: one current-epoch instance per agent."""

    def __init__(self, registry: Any, namespace: str) -> None:
        self._registry = registry
        self._namespace = namespace

    def read(self) -> dict[str, LiveInstance]:
        live: dict[str, LiveInstance] = {}
        for row in self._registry.active_instances():
            live[row.logical_id] = LiveInstance(
                agent_id=row.logical_id,
                instance_id=str(row.instance_id),
                actor_name=row.actor_name or row.logical_id,
                namespace=row.namespace or self._namespace,
                epoch=str(row.cluster_epoch),
            )
        return live


class StaticLive:
    """A prepared live set (benchmarks, embedding code that tracks liveness itself)."""

    def __init__(self, instances: Mapping[str, LiveInstance]) -> None:
        self.instances = dict(instances)

    def read(self) -> dict[str, LiveInstance]:
        return self.instances


class Dispatcher(Protocol):
    """Delivers a task to a named actor: ``actors.ActorGone`` when it is not there,
    ``actors.NoAnswer`` on timeout; ``ping`` is Ray's own discovery (the instance id)."""

    def execute(
        self, name: str, namespace: str, payload: Mapping[str, Any], timeout_s: float
    ) -> Any: ...

    def ping(self, name: str, namespace: str) -> str | None: ...


@dataclass
class _Shape:
    """Cached answers for one task shape."""

    version: int
    candidates: list[Candidate]
    live_token: int | None = None
    live: list[tuple[Candidate, LiveInstance | None]] = field(default_factory=list)
    cursor: int = 0


@dataclass
class _LiveView:
    instances: Mapping[str, LiveInstance] | None  # None: registry down, ask Ray
    token: int
    read_at: float


class Router:
    """Routes tasks for one process; thread-safe, so concurrent callers spread the load."""

    def __init__(
        self,
        graph: GraphClient,
        live: LiveSource | None = None,
        *,
        namespace: str | None = None,
        dispatcher: Dispatcher | None = None,
        max_attempts: int = 3,
        cooldown_s: float = 10.0,
        live_refresh_s: float = 1.0,
        version_check_s: float = 1.0,
        registry_retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.graph = graph
        self.live_source = live
        self.namespace = namespace or default_namespace()
        self.dispatcher: Dispatcher = dispatcher or actors.RayDispatcher()
        self.max_attempts = max(1, max_attempts)
        self.cooldown_s = cooldown_s
        self.live_refresh_s = live_refresh_s
        self.version_check_s = version_check_s
        self.registry_retry_s = registry_retry_s
        self._clock = clock
        self._lock = threading.RLock()
        self._shapes: dict[TaskShape, _Shape] = {}
        self._version: int | None = None
        self._version_at = float("-inf")
        self._live: _LiveView | None = None
        self._registry_down_until = float("-inf")
        self.in_flight: Counter[str] = Counter()
        self.dispatched: Counter[str] = Counter()
        self._cool_until: dict[str, float] = {}

    @classmethod
    def from_registry(cls, graph: GraphClient, registry: Any, **kwargs: Any) -> Router:
        """A router whose live set is the registry's ``active_instance`` view."""
        namespace = kwargs.pop("namespace", None) or default_namespace()
        return cls(graph, RegistryLive(registry, namespace), namespace=namespace, **kwargs)

    # --- what changes the cache ------------------------------------------------------------
    def invalidate(self, *, live: bool = True) -> None:
        """Forget cached candidates and the version (and the live set unless ``live=False``)."""
        with self._lock:
            self._shapes.clear()
            self._version = None
            self._version_at = float("-inf")
            if live:
                self._live = None

    def _graph_version(self, now: float) -> int:
        if self._version is None or now - self._version_at >= self.version_check_s:
            version = self.graph.version()
            if version != self._version:
                self._shapes.clear()
            self._version, self._version_at = version, now
        return self._version

    def _live_view(self, now: float) -> _LiveView:
        view = self._live
        if view is not None and now - view.read_at < self.live_refresh_s:
            return view
        instances: Mapping[str, LiveInstance] | None = None
        if self.live_source is not None and now >= self._registry_down_until:
            try:
                instances = self.live_source.read()
            except RegistryUnavailable as exc:
                log.warning("registry unavailable, routing through Ray discovery: %s", exc)
                # counted from the failed read's end: back within ~retry_s of the return
                self._registry_down_until = self._clock() + self.registry_retry_s
        if instances is None:
            token = -1
        elif view is not None and view.instances is instances:
            token = view.token  # a prepared set that did not change
        else:
            token = hash(frozenset((i.agent_id, i.instance_id) for i in instances.values()))
        self._live = _LiveView(instances, token, now)
        return self._live

    def _candidates(self, shape: TaskShape, version: int) -> tuple[_Shape, bool]:
        entry = self._shapes.get(shape)
        if entry is not None and entry.version == version:
            return entry, True
        rows = self.graph.run("route_candidates", **shape_params(shape))
        candidates = candidates_from_rows(rows)
        entry = _Shape(version, sorted(candidates, key=lambda c: c.agent_id))
        self._shapes[shape] = entry
        return entry, False

    def _live_candidates(
        self, entry: _Shape, view: _LiveView
    ) -> list[tuple[Candidate, LiveInstance | None]]:
        """Qualified agents that are live, by agent id; in Ray mode every candidate."""
        if entry.live_token != view.token:
            if view.instances is None:
                entry.live = [(c, None) for c in entry.candidates]
            else:
                live = view.instances
                entry.live = [(c, live[c.agent_id]) for c in entry.candidates if c.agent_id in live]
            entry.live_token = view.token
        return entry.live

    # --- the choice ---------------------------------------------------------------------
    def _ranked(
        self, entry: _Shape, pairs: list[tuple[Candidate, LiveInstance | None]], skip: set[str]
    ) -> Iterator[tuple[Candidate, LiveInstance | None]]:
        """Preference order: idle agents round-robin from the shape's cursor, then busy ones
        by tasks in flight. Lazy, so the usual choice costs O(1) even with 1,000s of
        candidates; cooling and skipped agents are left out."""
        n = len(pairs)
        start = entry.cursor % n if n else 0
        now = self._clock()
        busy: list[tuple[int, int]] = []
        for step in range(n):
            index = (start + step) % n
            agent_id = pairs[index][0].agent_id
            if agent_id in skip or self._cool_until.get(agent_id, 0.0) > now:
                continue
            load = self.in_flight.get(agent_id, 0)
            if load:
                busy.append((load, step))
                continue
            entry.cursor = index + 1
            yield pairs[index]
        for _, step in sorted(busy):
            index = (start + step) % n
            entry.cursor = index + 1
            yield pairs[index]

    def _cool(self, agent_id: str, now: float) -> None:
        self._cool_until[agent_id] = now + self.cooldown_s
        self._live = None  # the live set may be stale: re-read it on the next task

    def _resolve(self, candidate: Candidate) -> LiveInstance | None:
        """Ray's own discovery: the actor named after the agent, if it answers ``ping``."""
        namespace = candidate.namespace or self.namespace
        instance_id = self.dispatcher.ping(candidate.agent_id, namespace)
        if instance_id is None:
            return None
        name = candidate.agent_id
        return LiveInstance(name, instance_id, name, namespace, source=SOURCE_RAY)

    def _pick(
        self, task: TaskRequest, skip: set[str], *, reserve: bool = True
    ) -> tuple[Candidate, LiveInstance, str, dict[str, Any]]:
        """Choose (and reserve) the next agent; raises NoQualifiedAgent when none is left."""
        while True:
            with self._lock:
                now = self._clock()
                version = self._graph_version(now)
                view = self._live_view(now)
                entry, cached = self._candidates(task.shape(), version)
                pairs = self._live_candidates(entry, view)
                ranked = self._ranked(entry, pairs, skip)
                if view.instances is not None:
                    choice = next(ranked, None)
                    if choice is None:
                        break
                    candidate, instance = choice
                    assert instance is not None
                    source = SOURCE_REGISTRY
                    load = self.in_flight.get(candidate.agent_id, 0)
                    if reserve:
                        self.in_flight[candidate.agent_id] += 1
                        self.dispatched[candidate.agent_id] += 1
                    facts: dict[str, Any] = {
                        "qualified": len(entry.candidates),
                        "live": len(pairs),
                        "load": load,
                        "cached": cached,
                    }
                    return candidate, instance, source, facts
                batch = list(itertools.islice(ranked, _RAY_LOOKUP_BATCH))
            if not batch:
                break
            # registry down: ask Ray for the named actors, outside the lock
            for candidate, _ in batch:
                resolved = self._resolve(candidate)
                if resolved is None:
                    skip.add(candidate.agent_id)
                    continue
                with self._lock:
                    load = self.in_flight.get(candidate.agent_id, 0)
                    if reserve:
                        self.in_flight[candidate.agent_id] += 1
                        self.dispatched[candidate.agent_id] += 1
                facts = {
                    "qualified": len(entry.candidates),
                    "live": None,
                    "load": load,
                    "cached": cached,
                }
                return candidate, resolved, SOURCE_RAY, facts
        raise self._refusal(task, skip)

    def _release(self, agent_id: str) -> None:
        with self._lock:
            self.in_flight[agent_id] -= 1
            if self.in_flight[agent_id] <= 0:
                del self.in_flight[agent_id]

    def route(self, task: TaskRequest | Mapping[str, Any]) -> RoutingDecision:
        """Choose an agent without dispatching (the CLI's dry answer); reserves nothing."""
        request = TaskRequest.parse(task)
        start = time.perf_counter()
        candidate, instance, source, facts = self._pick(request, set(), reserve=False)
        return self._decision(request, candidate, instance, source, facts, start, ())

    def execute(self, task: TaskRequest | Mapping[str, Any]) -> RoutedResult:
        """Route and run one task; retries the next agent when delivery fails (bounded)."""
        request = TaskRequest.parse(task)
        start = time.perf_counter()
        payload = request.payload()
        tried: set[str] = set()
        failures: list[tuple[str, str]] = []
        for _ in range(self.max_attempts):
            pick_start = time.perf_counter()
            try:
                candidate, instance, source, facts = self._pick(request, tried)
            except NoQualifiedAgent:
                if not failures:
                    raise
                break
            decision = self._decision(
                request, candidate, instance, source, facts, pick_start, tuple(failures)
            )
            tried.add(candidate.agent_id)
            try:
                result = self.dispatcher.execute(
                    instance.actor_name, instance.namespace, payload, request.timeout_s
                )
            except actors.ActorGone as exc:
                with self._lock:
                    self._cool(candidate.agent_id, self._clock())
                failures.append((candidate.agent_id, str(exc)))
                log.warning("dispatch to %s failed, trying the next agent: %s", candidate, exc)
                continue
            except actors.NoAnswer as exc:
                with self._lock:
                    self._cool(candidate.agent_id, self._clock())
                failures.append((candidate.agent_id, str(exc)))
                raise DispatchFailed(
                    f"task {request.task_id} timed out on {candidate.agent_id}", failures
                ) from None
            finally:
                self._release(candidate.agent_id)
            total = (time.perf_counter() - start) * 1000.0
            return RoutedResult(result=result, decision=decision, total_ms=total)
        raise DispatchFailed(
            f"task {request.task_id}: {len(failures)} qualified agent(s) failed to take it",
            failures,
        )

    def _decision(
        self,
        task: TaskRequest,
        candidate: Candidate,
        instance: LiveInstance,
        source: str,
        facts: Mapping[str, Any],
        start: float,
        failures: Sequence[tuple[str, str]],
    ) -> RoutingDecision:
        latency = (time.perf_counter() - start) * 1000.0
        return RoutingDecision(
            task_id=task.task_id,
            agent_id=candidate.agent_id,
            instance_id=instance.instance_id,
            organ_id=candidate.organ_id,
            actor_name=instance.actor_name,
            namespace=instance.namespace,
            live_source=source,
            why=explain_choice(task, candidate, instance, facts),
            latency_ms=latency,
            qualified=int(facts["qualified"]),
            live_qualified=int(facts["live"]) if facts["live"] is not None else -1,
            cached=bool(facts["cached"]),
            failed_attempts=tuple(failures),
        )

    # --- refusals -----------------------------------------------------------------------
    def explain(self, task: TaskRequest | Mapping[str, Any]) -> dict[str, list[str]]:
        """Every agent's reasons not to take the task (empty list: it would take it)."""
        request = TaskRequest.parse(task)
        with self._lock:
            now = self._clock()
            view = self._live_view(now)
        return self._reasons(request, view, set(), now)

    def _reasons(
        self, task: TaskRequest, view: _LiveView, skipped: set[str], now: float
    ) -> dict[str, list[str]]:
        rows = self.graph.run("route_explain", **task.route_params())
        reasons: dict[str, list[str]] = {}
        for row in rows:
            agent_id = str(row["agent_id"])
            why = [str(r) for r in row.get("reasons") or []]
            if not why:
                why = self._runtime_reasons(agent_id, row.get("namespace"), view, skipped, now)
            reasons[agent_id] = why
        return reasons

    def _runtime_reasons(
        self,
        agent_id: str,
        namespace: str | None,
        view: _LiveView,
        skipped: set[str],
        now: float,
    ) -> list[str]:
        """Why a qualified agent still cannot take the task: only this process knows."""
        why: list[str] = []
        if view.instances is not None:
            if agent_id not in view.instances:
                why.append("not live (no current-epoch instance in active_instance)")
        elif agent_id in skipped:
            why.append(
                f"not live (Ray has no answering actor {agent_id!r} in namespace "
                f"{namespace or self.namespace!r}; registry unavailable)"
            )
        cool = self._cool_until.get(agent_id, 0.0)
        if cool > now:
            why.append(f"cooling down for {cool - now:.1f} s after a failed dispatch")
        if not why and agent_id in skipped:
            why.append("dispatch failed")
        return why

    def _refusal(self, task: TaskRequest, skipped: set[str]) -> NoQualifiedAgent:
        with self._lock:
            now = self._clock()
            view = self._live or self._live_view(now)
        reasons = self._reasons(task, view, skipped, now)
        detail = ", ".join(f"{k}: {'; '.join(v)}" for k, v in list(reasons.items())[:5])
        more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
        return NoQualifiedAgent(
            f"no qualified live agent for task {task.task_id} ({task.task_type}) among "
            f"{len(reasons)} agent(s): {detail}{more}",
            reasons,
        )


def explain_choice(
    task: TaskRequest, candidate: Candidate, instance: LiveInstance, facts: Mapping[str, Any]
) -> str:
    """One sentence a person can read: why this agent, out of how many."""
    rules = []
    if task.required_skills:
        rules.append("skills " + ", ".join(task.required_skills))
    if task.required_models:
        rules.append("models " + ", ".join(task.required_models))
    if task.organ_id:
        rules.append(f"organ {task.organ_id}")
    if task.min_gpus:
        rules.append(f"at least {task.min_gpus:g} GPU(s)")
    if task.requirements:
        rules.append("no policy forbids " + ", ".join(task.requirements))
    qualified = "qualified (" + "; ".join(rules) + ")" if rules else "qualified (no requirements)"
    if instance.source == SOURCE_REGISTRY:
        liveness = f"live in active_instance (instance {instance.instance_id})"
        pool = f"least busy of {facts['live']} live qualified agent(s)"
    else:
        liveness = f"answering Ray actor {instance.namespace}/{instance.actor_name} (registry down)"
        pool = f"least busy of {facts['qualified']} qualified agent(s)"
    return (
        f"{candidate.agent_id} in organ {candidate.organ_id}: {qualified}; {liveness}; "
        f"{pool} with {facts['load']} task(s) in flight; ties rotate round-robin in "
        "agent-id order"
    )
