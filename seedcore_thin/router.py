"""Send a task to the best qualified live agent, never past a guardrail, and say why.

Who qualifies is decided by the graph (``cypher/queries/route_candidates.cypher``: skills,
models, organ, GPUs, policies); who is alive by PostgreSQL (``active_instance``, current
epoch only) or, when the registry is down, by Ray's named actors. Python only intersects
the two, picks the least busy agent and dispatches. A refusal explains the agents that came
closest (``route_explain_near.cypher``, at most ``REFUSAL_EXPLAINED``) plus what only this
process knows (not live, cooling down), and counts the rest by reason; ``explain`` gives every
agent's reasons (``route_explain.cypher``, the whole fleet).

Caching: the candidate list of a task shape is kept until the desired-state version changes,
the version is read at most every ``version_check_s``. A shape's first decision reads only a
first page of its candidates (``first_page``, in graph order): at 100,000 agents one skill
may qualify 17,000 of them, and reading them all costs 10-40x more than the page. When the
shape is asked for again, the whole list is read in the background (the page serves
meanwhile), so later decisions spread the load over every qualified agent; when no agent of
the page can take the task, the whole list is read before deciding or refusing.

Every ``live_refresh_s`` the registry's live-set change counter is read (one scalar); the live
set itself only when the counter moved, or after ``live_resync_s`` (instances that fall silent
leave ``active_instance`` by the clock alone, without moving the counter, until
``expire_stale`` marks them dead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from seedcore_thin import actors
from seedcore_thin.config import default_namespace
from seedcore_thin.errors import DispatchFailed, NoQualifiedAgent, RegistryUnavailable
from seedcore_thin.graph import GraphClient
from seedcore_thin.metrics import Metrics, observe_routing
from seedcore_thin.tasks import TaskRequest

log = logging.getLogger(__name__)

REFUSAL_EXPLAINED = 50  # agents a refusal explains one by one; the rest are counted by reason
FIRST_PAGE = 32  # candidates a shape's first decision reads (the rest in the background)
EVERY_CANDIDATE = 2**31 - 1  # route_candidates' $limit for the whole list
NOT_LIVE = "not live (no current-epoch instance in active_instance)"


class Candidate(NamedTuple):
    """An agent the graph says qualifies for a task shape (liveness not yet known); a tuple
    because a decision at 100,000 agents may build 17,000 of them."""

    agent_id: str
    organ_id: str
    namespace: str | None


def candidates_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """``route_candidates`` rows -> candidates sorted by agent id (an edge duplicated by hand
    may repeat an agent: kept once)."""
    return sorted({Candidate(r["agent_id"], r["organ_id"], r["namespace"] or None) for r in rows})


class LiveInstance(NamedTuple):
    """One running instance of an agent, as the registry or Ray (``source``) reports it (a
    tuple: the router may build 100,000 of them when the live set changes)."""

    agent_id: str
    instance_id: str
    actor_name: str
    namespace: str
    source: Literal["registry", "ray"] = "registry"


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
    qualified: int  # known when deciding: a first page on a shape's first decision
    live_qualified: int  # -1 when the registry was down (liveness asked of Ray, one by one)
    cached: bool
    failed_attempts: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For ``json.dumps`` (the CLI's ``--json``)."""
        return {**asdict(self), "latency_ms": round(self.latency_ms, 3)}


@dataclass(frozen=True)
class RoutedResult:
    """What ``execute`` returned, with the decision that sent it there."""

    result: Any
    decision: RoutingDecision
    total_ms: float


@dataclass(frozen=True)
class RegistryLive:
    """The ``active_instance`` view: one current-epoch instance per agent (``read`` raises
    RegistryUnavailable when the registry cannot tell; the router then asks Ray)."""

    registry: Any
    namespace: str  # for instances registered without one

    def read(self) -> dict[str, LiveInstance]:
        return {
            row["logical_id"]: LiveInstance(
                row["logical_id"],
                row["instance_id"],
                row["actor_name"] or row["logical_id"],
                row["namespace"] or self.namespace,
            )
            for row in self.registry.call("live_set")
        }

    def version(self) -> int:
        """The live-set change counter (read before ``read``: a change in between only
        costs one more read)."""
        return int(self.registry.call("live_set_version"))

    def not_ready(self) -> dict[str, str]:
        """Agents whose last start failed in their own code, as the audit recorded it."""
        return {
            row["agent_id"]: f"not ready: {row['last_error']}"
            for row in self.registry.call("reconcile_agent_state")
            if row["last_outcome"] == "failed"
            and str(row["last_error"] or "").startswith("setup failed")
        }


class StaticLive:
    """A prepared live set (benchmarks, embedding code that tracks liveness itself)."""

    def __init__(self, instances: Mapping[str, LiveInstance]) -> None:
        self.instances = dict(instances)

    def read(self) -> dict[str, LiveInstance]:
        return self.instances

    def version(self) -> None:
        """No change counter: read every time (it costs nothing)."""
        return None


@dataclass
class _Shape:
    """Cached answers for one task shape: its candidates (all of them, or a first page until
    ``complete``), and those in the live set."""

    params: dict[str, Any]  # route_candidates' parameters, for the whole list
    candidates: list[Candidate]
    complete: bool
    filling: bool = False  # the whole list is being read in the background
    live_of: int = -1  # the generation of the live set ``live`` was made from
    live: list[Candidate] = field(default_factory=list)
    cursor: int = 0


class Router:
    """Routes tasks for one process; thread-safe, so concurrent callers spread the load."""

    metrics: Metrics | None = None  # set by Tier0Manager: its routing metrics

    def __init__(
        self,
        graph: GraphClient,
        live: RegistryLive | StaticLive | None = None,
        *,
        namespace: str | None = None,
        dispatcher: actors.RayDispatcher | None = None,
        max_attempts: int = 3,
        cooldown_s: float = 10.0,
        refusal_explained: int = REFUSAL_EXPLAINED,
        first_page: int = FIRST_PAGE,
        live_refresh_s: float = 1.0,
        live_resync_s: float = 30.0,
        version_check_s: float = 1.0,
        registry_retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.graph = graph
        self.live_source = live
        self.namespace = namespace or default_namespace()
        self.dispatcher = dispatcher or actors.RayDispatcher()
        self.max_attempts = max(1, max_attempts)
        self.cooldown_s = cooldown_s
        self.refusal_explained = refusal_explained
        self.first_page = max(1, first_page)
        self.live_refresh_s = live_refresh_s
        self.live_resync_s = live_resync_s
        self.version_check_s = version_check_s
        self.registry_retry_s = registry_retry_s
        self._clock = clock
        self._lock = threading.RLock()
        self._shapes: dict[tuple[Any, ...], _Shape] = {}
        self._version: int | None = None
        self._version_at = float("-inf")
        self._live: Mapping[str, LiveInstance] | None = None  # None: registry down, ask Ray
        self._live_at = float("-inf")
        self._live_read: tuple[int | None, float] = (None, float("-inf"))  # counter, when
        self._live_generation = 0  # counts changes of who is live (not of their instances)
        self._registry_down_until = float("-inf")
        self.in_flight: Counter[str] = Counter()
        self._cool_until: dict[str, float] = {}
        self._filler: ThreadPoolExecutor | None = None  # one thread reads whole lists
        self._fills: list[Future[None]] = []

    @classmethod
    def from_registry(cls, graph: GraphClient, registry: Any, **kwargs: Any) -> Router:
        """A router whose live set is the registry's ``active_instance`` view."""
        namespace = kwargs.pop("namespace", None) or default_namespace()
        return cls(graph, RegistryLive(registry, namespace), namespace=namespace, **kwargs)

    # --- the caches: candidates per task shape, the live set --------------------------------
    def invalidate(self, *, live: bool = True) -> None:
        """Forget cached candidates and the version (and the live set unless ``live=False``)."""
        with self._lock:
            self._shapes.clear()
            self._version = None
            if live:
                self._live_at = float("-inf")
                self._live_read = (None, float("-inf"))

    def _live_set(self, now: float) -> Mapping[str, LiveInstance] | None:
        """Who is live, by agent id; None while the registry is down (then Ray is asked).
        Read again only when the change counter moved or ``live_resync_s`` passed."""
        if now - self._live_at < self.live_refresh_s:
            return self._live
        live: Mapping[str, LiveInstance] | None = None
        if self.live_source is not None and now >= self._registry_down_until:
            try:
                version = self.live_source.version()
                read_version, read_at = self._live_read
                if (
                    version is not None
                    and version == read_version
                    and self._live is not None
                    and now - read_at < self.live_resync_s
                ):
                    self._live_at = now
                    return self._live
                live = self.live_source.read()
                self._live_read = (version, now)
            except RegistryUnavailable as exc:
                log.warning("registry unavailable, routing through Ray discovery: %s", exc)
                self._registry_down_until = self._clock() + self.registry_retry_s
        if live is None or self._live is None or live.keys() != self._live.keys():
            self._live_generation += 1  # the per-shape live lists are made again
        self._live, self._live_at = live, now
        return live

    def _candidates(self, task: TaskRequest, now: float) -> tuple[_Shape, bool]:
        """The shape's qualified agents, in agent-id order, and whether they were cached
        (the cache is dropped when the desired-state version changes)."""
        if self._version is None or now - self._version_at >= self.version_check_s:
            version = self.graph.version()
            if version != self._version:
                self._shapes.clear()
            self._version, self._version_at = version, now
        key = task.shape()
        entry = self._shapes.get(key)
        if entry is not None:
            if not entry.complete and not entry.filling:  # asked again: read them all
                entry.filling = True
                self._filler = self._filler or ThreadPoolExecutor(1, "seedcore-router-fill")
                pending = [f for f in self._fills if not f.done()]
                self._fills = [*pending, self._filler.submit(self._fill_behind, entry)]
            return entry, True
        params = task.route_params()
        page = candidates_from_rows(
            self.graph.run("route_candidates", **params, limit=self.first_page)
        )
        entry = self._shapes[key] = _Shape(params, page, complete=len(page) < self.first_page)
        return entry, False

    def _fill(self, entry: _Shape) -> None:
        """Read a shape's whole candidate list into its cache entry (an entry the cache has
        dropped meanwhile is filled all the same, and simply never used)."""
        rows = self.graph.run("route_candidates", **entry.params, limit=EVERY_CANDIDATE)
        candidates = candidates_from_rows(rows)
        with self._lock:  # intersected here, off the routing path, not at the next use
            live, generation = self._live, self._live_generation
        in_live = [c for c in candidates if c.agent_id in live] if live is not None else []
        with self._lock:
            entry.candidates, entry.complete, entry.filling = candidates, True, False
            entry.live, entry.live_of = in_live, generation if live is not None else -1

    def _fill_behind(self, entry: _Shape) -> None:
        """``_fill`` on the background thread: a failure is logged, and the page keeps
        serving until the shape's next use tries again."""
        try:
            self._fill(entry)
        except Exception as exc:
            log.warning("reading a whole candidate list in the background failed: %s", exc)
            with self._lock:
                entry.filling = False

    def settle(self, timeout_s: float | None = None) -> None:
        """Wait for the background reads of whole candidate lists (benchmarks, tests)."""
        wait(list(self._fills), timeout_s)

    def _live_candidates(self, entry: _Shape, live: Mapping[str, LiveInstance]) -> list[Candidate]:
        """The shape's candidates that are live, made once per set of live agents."""
        if entry.live_of != self._live_generation:
            entry.live = [c for c in entry.candidates if c.agent_id in live]
            entry.live_of = self._live_generation
        return entry.live

    # --- the choice ---------------------------------------------------------------------
    def _next_agent(self, entry: _Shape, pool: list[Candidate], skip: set[str]) -> Candidate | None:
        """The first idle agent round-robin from the shape's cursor, else the least busy;
        cooling and skipped agents are left out. It stops at the first idle agent, so the
        usual choice costs O(1) even with 1,000s of candidates."""
        now = self._clock()
        best: tuple[int, int] | None = None  # (tasks in flight, index in pool)
        for step in range(len(pool)):
            index = (entry.cursor + step) % len(pool)
            agent_id = pool[index].agent_id
            if agent_id in skip or self._cool_until.get(agent_id, 0.0) > now:
                continue
            load = self.in_flight[agent_id]
            if best is None or load < best[0]:
                best = (load, index)
                if not load:
                    break
        if best is None:
            return None
        entry.cursor = best[1] + 1
        return pool[best[1]]

    def _reserve(self, agent_id: str, reserve: bool) -> int:
        """The agent's tasks in flight, then one more when ``reserve`` (undone by _release)."""
        with self._lock:
            load = self.in_flight[agent_id]
            if reserve:
                self.in_flight[agent_id] += 1
            return load

    def _release(self, agent_id: str) -> None:
        with self._lock:
            self.in_flight[agent_id] -= 1
            if self.in_flight[agent_id] <= 0:
                del self.in_flight[agent_id]

    def _pick(
        self,
        task: TaskRequest,
        skip: set[str],
        failures: Sequence[tuple[str, str]] = (),
        *,
        reserve: bool = True,
    ) -> RoutingDecision:
        """Choose and reserve the next agent, or raise NoQualifiedAgent. With the registry,
        choice and reservation are one step under the lock; without it, Ray is asked about
        one candidate at a time, outside the lock."""
        start = time.perf_counter()
        with self._lock:
            entry, cached = self._candidates(task, self._clock())
        while True:
            with self._lock:
                live = self._live_set(self._clock())
                pool = entry.candidates if live is None else self._live_candidates(entry, live)
                agent = self._next_agent(entry, pool, skip)
                if agent is None and not entry.complete:  # nobody in the page: read them all
                    self._fill(entry)
                    continue
                known, complete = len(entry.candidates), entry.complete  # a fill may follow
                if agent is not None and live is not None:
                    instance = live[agent.agent_id]
                    load = self._reserve(agent.agent_id, reserve)
                    break
            if agent is None:
                raise self._refusal(task, skip, entry.candidates)
            # registry down: Ray's own discovery, the agent's own actor or its pool host
            namespace = agent.namespace or self.namespace
            found = self.dispatcher.ping(agent.agent_id, namespace)
            if found is not None:
                home, instance_id = found
                instance = LiveInstance(agent.agent_id, instance_id, home, namespace, "ray")
                load = self._reserve(agent.agent_id, reserve)
                break
            skip.add(agent.agent_id)
        return RoutingDecision(
            task_id=task.task_id,
            agent_id=agent.agent_id,
            instance_id=instance.instance_id,
            organ_id=agent.organ_id,
            actor_name=instance.actor_name,
            namespace=instance.namespace,
            live_source=instance.source,
            why=explain_choice(task, agent, instance, len(pool), load, complete),
            latency_ms=(time.perf_counter() - start) * 1000.0,
            qualified=known,
            live_qualified=-1 if live is None else len(pool),
            cached=cached,
            failed_attempts=tuple(failures),
        )

    def route(self, task: TaskRequest | Mapping[str, Any]) -> RoutingDecision:
        """Choose an agent without dispatching (the CLI's dry answer); reserves nothing."""
        return self._pick(TaskRequest.parse(task), set(), reserve=False)

    @observe_routing
    def execute(self, task: TaskRequest | Mapping[str, Any]) -> RoutedResult:
        """Route and run one task; retries the next agent when delivery fails (bounded)."""
        request = TaskRequest.parse(task)
        start = time.perf_counter()
        payload = request.payload()
        tried: set[str] = set()
        failures: list[tuple[str, str]] = []
        for _ in range(self.max_attempts):
            try:
                decision = self._pick(request, tried, failures)
            except NoQualifiedAgent:
                if not failures:
                    raise
                break
            agent_id = decision.agent_id
            tried.add(agent_id)
            try:
                result = self.dispatcher.execute(
                    decision.actor_name, decision.namespace, payload, request.timeout_s, agent_id
                )
            except (actors.ActorGone, actors.NoAnswer) as exc:
                with self._lock:  # the live set may be stale: re-read it on the next task
                    until = self._clock() + self.cooldown_s
                    for gone in self._sharing(decision, exc):  # a dead host: all its agents
                        self._cool_until[gone] = until
                        tried.add(gone)
                    self._live_at = float("-inf")
                    self._live_read = (None, float("-inf"))
                failures.append((agent_id, str(exc)))
                if isinstance(exc, actors.NoAnswer):  # it may still be running: not retried
                    raise DispatchFailed(
                        f"task {request.task_id} timed out on {agent_id}", failures
                    ) from None
                log.warning("dispatch to %s failed, trying the next agent: %s", agent_id, exc)
                continue
            finally:
                self._release(agent_id)
            return RoutedResult(result, decision, (time.perf_counter() - start) * 1000.0)
        raise DispatchFailed(
            f"task {request.task_id}: {len(failures)} qualified agent(s) failed to take it",
            failures,
        )

    # --- refusals -----------------------------------------------------------------------
    def explain(self, task: TaskRequest | Mapping[str, Any]) -> dict[str, list[str]]:
        """Every agent's reasons not to take the task (empty list: it would take it); reads
        the whole fleet (``route_explain``), so refusals use ``route_explain_near``."""
        request = TaskRequest.parse(task)
        return self._reasons(
            request, set(), self.graph.run("route_explain", **request.route_params())
        )

    def _reasons(
        self, task: TaskRequest, skipped: set[str], rows: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[str]]:
        """The graph's reasons (``rows``); a qualified agent may still be refused for what
        only this process knows: not live (``skipped``: Ray had no answer), or cooling down."""
        with self._lock:
            now = self._clock()
            live = self._live_set(now)
        reasons: dict[str, list[str]] = {}
        not_ready: dict[str, str] | None = None  # read only when a qualified agent is not live
        for row in rows:
            agent_id = str(row["agent_id"])
            why = reasons[agent_id] = [str(r) for r in row.get("reasons") or []]
            if why:
                continue
            if live is not None and agent_id not in live:
                not_ready = self._not_ready() if not_ready is None else not_ready
                why.append(not_ready.get(agent_id) or NOT_LIVE)
            elif live is None and agent_id in skipped:
                namespace = row.get("namespace") or self.namespace
                why.append(
                    f"not live (Ray has no answering actor {agent_id!r} in namespace "
                    f"{namespace!r}; registry unavailable)"
                )
            cool = self._cool_until.get(agent_id, 0.0)
            if cool > now:
                why.append(f"cooling down for {cool - now:.1f} s after a failed dispatch")
        return reasons

    def _sharing(self, decision: RoutingDecision, exc: Exception) -> set[str]:
        """The agents a failed dispatch rules out: the agent, and when its pool host is gone
        (not just slow), every agent the live set places in that host."""
        mates = {decision.agent_id}
        if isinstance(exc, actors.ActorGone) and decision.actor_name != decision.agent_id:
            live = self._live or {}
            mates |= {a for a, i in live.items() if i.actor_name == decision.actor_name}
        return mates

    def homes(self) -> dict[str, str]:
        """Agent id -> the actor it lives in (its own, or a pool host), from the live set."""
        with self._lock:
            live = self._live_set(self._clock())
        return {agent_id: i.actor_name for agent_id, i in (live or {}).items()}

    def _not_ready(self) -> dict[str, str]:
        """Why agents are not live when their own code is the cause (registry only)."""
        try:
            return dict(getattr(self.live_source, "not_ready", dict)())
        except RegistryUnavailable:
            return {}

    def _refusal(
        self, task: TaskRequest, skipped: set[str], candidates: Sequence[Candidate]
    ) -> NoQualifiedAgent:
        """The closest agents' reasons, and the rest counted by reason: the graph's counts,
        plus the qualified agents not explained, by why this process passed them over."""
        params = {**task.route_params(), "limit": self.refusal_explained}
        [near] = self.graph.run("route_explain_near", **params) or [{}]
        reasons = self._reasons(task, skipped, near.get("explained") or [])
        summary = Counter({str(s["reason"]): int(s["agents"]) for s in near.get("summary") or []})
        with self._lock:
            now, live = self._clock(), self._live
        for c in candidates:
            if c.agent_id in reasons:
                continue
            if live is not None and c.agent_id not in live:
                summary[NOT_LIVE] += 1
            elif live is None and c.agent_id in skipped:
                summary["not live (no answering Ray actor; registry unavailable)"] += 1
            elif self._cool_until.get(c.agent_id, 0.0) > now:
                summary["cooling down after a failed dispatch"] += 1
        detail = ", ".join(f"{k}: {'; '.join(v)}" for k, v in list(reasons.items())[:5])
        more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
        rest = "; ".join(f"{n:,} agent(s): {r}" for r, n in summary.most_common(5))
        return NoQualifiedAgent(
            f"no qualified live agent for task {task.task_id} ({task.task_type}) among "
            f"{near.get('agents', len(reasons))} agent(s): {detail or 'none came close'}{more}"
            + (f"; the others: {rest}" if rest else ""),
            reasons,
            dict(summary.most_common()),
        )


def explain_choice(
    task: TaskRequest,
    agent: Candidate,
    instance: LiveInstance,
    pool: int,
    load: int,
    complete: bool = True,
) -> str:
    """One sentence a person can read: why this agent, out of how many (``pool``)."""
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
    home = where(agent.agent_id, instance.actor_name)
    first = "" if complete else "the first "
    if instance.source == "registry":
        liveness = f"live in active_instance (instance {instance.instance_id}), {home}"
        pool_of = f"{first}{pool} live qualified"
    else:
        liveness = f"answering in Ray (registry down), {home} in {instance.namespace}"
        pool_of = f"{first}{pool} qualified"
    return (
        f"{agent.agent_id} in organ {agent.organ_id}: "
        f"qualified ({'; '.join(rules) or 'no requirements'}); {liveness}; least busy of "
        f"{pool_of} agent(s) with {load} task(s) in flight; ties rotate round-robin in "
        "agent-id order"
    )


def where(agent_id: str, actor_name: str) -> str:
    """Where an agent lives, in words: its own actor, or the pool host it shares."""
    return "own actor" if actor_name == agent_id else f"pooled in host {actor_name}"
