"""Every Ray call of the runtime: joining Ray, the agents' actors, discovery and dispatch.

As in Ray Serve's ``ActorReplicaWrapper`` ("all Ray API calls should be made here"), other
modules never import ``ray``; every function joins Ray on first use by ``connect``'s rules.
A dedicated agent is a detached actor of its own, named by the agent id; pooled agents live
many to a host actor, named ``seedcore-pool-<organ>-<shape>-<n>``. Both carry each agent's
spec hash and a managed-by marker: that is how the reconciler tells its own actors from
foreign ones and sees a changed spec, even when PostgreSQL is down. Both answer the same
calls (``start``, ``ping``, ``execute``, ``stop``), naming the agent. Discovery never scans
the state API (capped at 100 rows): it lists the names (``list_named_actors``) and asks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from seedcore_thin import local
from seedcore_thin.agent import AgentContext, HostedAgent, on_loop
from seedcore_thin.config import Settings
from seedcore_thin.errors import ConfigError, LeaderLockHeld
from seedcore_thin.planner import POOL_PREFIX, RESERVED_NAMES
from seedcore_thin.specs import AgentSpec

MANAGED_BY = "seedcore_thin"
# calls an agent's actor serves beside its tasks: probes, describe, stop
PROBE_SLOTS = 4
PING_TIMEOUT_S = 2.0
# how long the router, with the registry down, trusts what pool hosts said they serve
HOSTS_TTL_S = 2.0
_K = TypeVar("_K")
log = logging.getLogger(__name__)
_connect_lock = threading.Lock()


def connect(settings: Settings | None = None, *, start: bool = False) -> str:
    """Join Ray once per process; returns the address joined (``local`` for a private one).

    A connection already made (the user's own ``ray.init``) is kept. Else ``RAY_ADDRESS``;
    else the embedded head (started first when ``start``); else a private local Ray, whose
    detached actors end with this process.
    """
    with _connect_lock:
        if ray.is_initialized():
            return str(ray.get_runtime_context().gcs_address)
        local.keep_ray_on_loopback()
        settings = settings or Settings.from_env()
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        address = settings.ray_address or local.ray_head(start=start)
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address:
                ray.init(address=address, **quiet)
                return address
            ray.init(address="local", include_dashboard=False, **quiet)
        except ConnectionError as exc:
            raise ConfigError(f"cannot join Ray at {address}: {exc}") from exc
        return "local"


def _joined() -> None:
    """Join by ``connect``'s rules before a first call: Ray's own auto-init would not."""
    if not ray.is_initialized():
        connect()


_remote = functools.cache(ray.remote)  # one remote class each: Ray exports it once


@functools.cache
def _agent_actor() -> Any:
    """AgentActor as a Ray class: its probes get threads of their own (concurrency groups
    are fixed when the class is made, not per actor)."""
    groups = {"probe": PROBE_SLOTS}
    return ray.remote(concurrency_groups=groups)(AgentActor)  # type: ignore[call-overload]


def start_actor(cls: type, name: str, namespace: str, *args: Any, **options: Any) -> Any:
    """Start a runtime actor (no CPU reserved); ``ValueError`` when the name is taken."""
    _joined()
    return _remote(cls).options(name=name, namespace=namespace, num_cpus=0, **options).remote(*args)


def _here() -> dict[str, Any]:
    """Where an actor runs, and the marker that says the runtime started it."""
    ctx = ray.get_runtime_context()
    return {
        "managed_by": MANAGED_BY,
        "actor_name": ctx.get_actor_name(),
        "node_id": ctx.get_node_id(),
        "ip_address": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
    }


class AgentActor:
    """One agent in a process of its own (dedicated placement): the user's class, hosted.

    A threaded actor, as close to a plain Ray actor as hosting allows: tasks run on Ray's
    threads (as many as the agent's ``max_concurrency``), a plain ``handle`` right there;
    probes have threads of their own (the ``probe`` concurrency group), so they answer
    while ``setup`` or long tasks run. (An async actor cost 0.36 ms more per task here.)"""

    def __init__(self, namespace: str, spec_hash: str, spec: Mapping[str, Any]) -> None:
        self._where = {**_here(), "spec": dict(spec)}
        self._agent = hosted_agent(spec, namespace, spec_hash)

    @ray.method(concurrency_group="probe")
    def start(self, wait_s: float = 3600.0) -> dict[str, Any]:
        """Run the agent's ``setup`` once (a later call waits for the same one), waiting at
        most ``wait_s`` here, so a probe thread is never held for long."""
        on_loop(self._agent.start(wait_s))
        return self._describe()

    @ray.method(concurrency_group="probe")
    def ping(self) -> str | None:
        """The instance id while the agent serves tasks (``alive``), else None: Ray's own
        discovery routes only to agents whose setup succeeded."""
        return self._agent.context.instance_id if self._agent.state == "alive" else None

    @ray.method(concurrency_group="probe")
    def describe(self) -> dict[str, Any]:
        """Who this actor is (agent, instance, spec hash, marker, node, pid) and its state."""
        return self._describe()

    def _describe(self) -> dict[str, Any]:
        return {**self._agent.describe(), **self._where}

    def execute(self, task: Mapping[str, Any]) -> dict[str, Any]:
        return {**self._agent.handle_here(task), "node_id": self._where["node_id"]}

    @ray.method(concurrency_group="probe")
    def health(self) -> dict[str, Any]:
        return dict(on_loop(self._agent.health()) or {})

    @ray.method(concurrency_group="probe")
    def stop(self, grace_s: float) -> dict[str, Any]:
        """Drain in-flight tasks (up to ``grace_s``), then the agent's ``shutdown``."""
        return dict(on_loop(self._agent.stop(grace_s)) or {})


class AgentHost:
    """Many pooled agents in one process, each its own :class:`HostedAgent` (own ``setup``,
    ``handle``, ``shutdown``, counters, in-flight limit): what one agent's code does stays
    with that agent. The host reserves its pool's resource shape once, for all of them.
    Its calls are :class:`AgentActor`'s, with the agent's id as the last argument."""

    def __init__(self, namespace: str, max_agents: int) -> None:
        self._where = _here()
        self._namespace = namespace
        self._max = max_agents
        self._agents: dict[str, HostedAgent] = {}
        self._specs: dict[str, dict[str, Any]] = {}

    async def add(self, spec_hash: str, spec: Mapping[str, Any]) -> bool:
        """Take the agent (``start`` runs its setup); False when the host is full."""
        agent_id = spec["agent_id"]
        if agent_id not in self._agents:
            if len(self._agents) >= self._max:
                return False
            self._agents[agent_id] = hosted_agent(spec, self._namespace, spec_hash)
            self._specs[agent_id] = dict(spec)
        return True

    async def start(self, agent_id: str) -> dict[str, Any]:
        await self._agents[agent_id].start()
        return self._info(agent_id)

    async def ping(self, agent_id: str) -> str | None:
        return (await self.serving()).get(agent_id)

    async def serving(self) -> dict[str, str]:
        """Agent id -> instance id of every agent here that serves tasks (``alive``)."""
        alive = (a for a in self._agents.values() if a.state == "alive")
        return {a.context.agent_id: a.context.instance_id for a in alive}

    async def describe(self) -> dict[str, Any]:
        """The host (marker, node, pid) and every agent's own ``describe()``."""
        return {**self._where, "kind": "host", "agents": [self._info(a) for a in self._agents]}

    async def execute(self, task: Mapping[str, Any], agent_id: str) -> dict[str, Any]:
        agent = self._agents.get(agent_id)
        if agent is None:  # removed meanwhile: like a drained agent, a failed result
            why = {"type": "AgentNotReady", "message": f"{agent_id} is not in this host"}
            return {"status": "failed", "agent_id": agent_id, "error": why}
        return {**await agent.handle(task), "node_id": self._where["node_id"]}

    async def stop(self, grace_s: float, agent_id: str) -> int:
        """Drain one agent and run its ``shutdown``, then drop it; the agents left here."""
        agent = self._agents.get(agent_id)
        if agent is not None:
            await agent.stop(grace_s)
            self._agents.pop(agent_id, None)
            self._specs.pop(agent_id, None)
        return len(self._agents)

    def _info(self, agent_id: str) -> dict[str, Any]:
        return {**self._agents[agent_id].describe(), **self._where, "spec": self._specs[agent_id]}


def agents_of(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The agents an actor's ``describe()`` answer speaks for: a host's many, or its one."""
    if info.get("kind") == "host":
        return [dict(agent) for agent in info.get("agents", ())]
    return [dict(info)]


def hosted_agent(spec: Mapping[str, Any], namespace: str, spec_hash: str) -> HostedAgent:
    """The host of one agent from its spec (as ``AgentSpec.model_dump(mode="json")``)."""
    context = AgentContext(
        agent_id=spec["agent_id"],
        organ_id=spec["organ_id"],
        namespace=namespace,
        instance_id=str(uuid.uuid4()),
        skills=tuple(spec.get("skills", ())),
        models=tuple(spec.get("models", ())),
        services=tuple(spec.get("services", ())),
        params=dict(spec.get("params") or {}),
        resources=dict(spec.get("resources") or {}),
    )
    limit = int(spec.get("max_concurrency", 1))
    return HostedAgent(context, spec.get("entrypoint"), spec_hash=spec_hash, max_in_flight=limit)


def shipped(runtime_env: Mapping[str, Any]) -> dict[str, Any]:
    """``runtime_env`` with local folders uploaded, as ``ray.init`` does for a job.

    Ray takes local ``working_dir``/``py_modules`` paths only at the job level; for one actor
    they must be URIs. Uploads are content-addressed, so an unchanged folder is sent once."""
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    env = dict(runtime_env)
    env = upload_py_modules_if_needed(env, include_gitignore=False, logger=log)
    return upload_working_dir_if_needed(env, include_gitignore=False, logger=log)


def namespace_of(spec: AgentSpec, default: str) -> str:
    """The spec's namespace, else the runtime default (``config.default_namespace()``)."""
    return spec.namespace or default


def _options(spec: AgentSpec) -> dict[str, Any]:
    """Ray options from the spec's resource shape, lifetime and runtime_env."""
    res = spec.resources
    return {
        "lifetime": spec.lifetime,
        "num_cpus": res.num_cpus,
        "num_gpus": res.num_gpus,
        "memory": res.memory_bytes or None,
        "resources": dict(res.custom) or None,
        "runtime_env": shipped(spec.runtime_env) if spec.runtime_env else None,
    }


def create_agent(spec: AgentSpec, namespace: str) -> Any:
    """Start the agent's actor; raises ``ValueError`` when the name is already taken."""
    _joined()
    actor = _agent_actor().options(
        name=spec.agent_id,
        namespace=namespace,
        max_concurrency=spec.max_concurrency,
        **_options(spec),
    )
    return actor.remote(namespace, spec.spec_hash(), spec.model_dump(mode="json"))


def pool_of(spec: AgentSpec) -> str:
    """A pooled agent's pool: one per (namespace, organ, resource shape, lifetime,
    runtime_env), since its hosts share all of them; host ``n`` is named ``<pool>-<n>``."""
    shape = {**spec.resources.model_dump(mode="json"), "lifetime": spec.lifetime}
    shape["runtime_env"] = spec.runtime_env
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:8]
    return f"{POOL_PREFIX}{spec.organ_id}-{digest}"


def home_of(spec: AgentSpec) -> str:
    """Where the agent goes: its own actor (named by its id), or its pool."""
    return pool_of(spec) if spec.placement == "pooled" else spec.agent_id


#: (namespace, pool) -> the first host that last had room: where the next add starts looking
_room: dict[tuple[str, str], int] = {}


def add_pooled(spec: AgentSpec, namespace: str, max_agents: int, timeout_s: float) -> str:
    """Put the agent into the first host of its pool with room, starting a new host when
    all are full; returns the host's name. A host Ray has not placed within ``timeout_s``
    takes the agent once it is (the call is queued): the agent is pending meanwhile."""
    _joined()
    pool = pool_of(spec)
    n = _room.get((namespace, pool), 0)
    args = (spec.spec_hash(), spec.model_dump(mode="json"))
    while True:
        name = f"{pool}-{n}"
        host = _remote(AgentHost).options(
            name=name,
            namespace=namespace,
            get_if_exists=True,
            max_concurrency=max(1000, 16 * max_agents),
            **_options(spec),
        )
        try:
            if ask(host.remote(namespace, max_agents), "add", *args, timeout_s=timeout_s):
                _room[(namespace, pool)] = n
                return name
        except NoAnswer:
            return name
        n += 1


def lookup(name: str, namespace: str) -> Any | None:
    """The named actor's handle, or None when no such actor is alive or pending."""
    _joined()
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def kill(name: str, namespace: str, *, wait_s: float = 10.0) -> bool:
    """Kill a named actor and wait until its name is free; False when it was not there."""
    handle = lookup(name, namespace)
    if handle is None:
        return False
    kill_handle(handle)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and lookup(name, namespace) is not None:
        time.sleep(0.05)
    return True


def kill_handle(handle: Any) -> None:
    """Kill an actor at once, without waiting for its name to be released."""
    ray.kill(handle, no_restart=True)


def named_actors(namespaces: Collection[str] | None = None) -> list[tuple[str, str]]:
    """(namespace, name) of every named actor (in ``namespaces``): one uncapped GCS call."""
    _joined()
    rows = ray.util.list_named_actors(all_namespaces=True)
    pairs = [(str(r["namespace"]), str(r["name"])) for r in rows]
    return sorted(p for p in pairs if namespaces is None or p[0] in namespaces)


@dataclass(frozen=True)
class Found:
    """One named actor: ``info`` is its ``describe()`` answer when it is ours and answered.

    Else ``foreign`` (no ``describe``, or another marker), or ``probe``: the question still
    outstanding as it did not answer in time."""

    namespace: str
    name: str
    info: Mapping[str, Any] | None
    foreign: bool = False
    probe: Any = None


def describe_all(
    pairs: Iterable[tuple[str, str]],
    *,
    timeout_s: float = 2.0,
    unplaceable: Collection[tuple[str, str]] = (),
    probes: Mapping[tuple[str, str], Any] | None = None,
) -> list[Found]:
    """Ask every named actor to describe itself, in parallel, waiting at most ``timeout_s``.

    Not waited for: actors known to need resources the cluster lacks (``unplaceable``) and
    actors whose earlier question (a ``Found.probe`` in ``probes``) is reused. Actors that
    died meanwhile are left out; runtime-reserved names are skipped."""
    probes = probes or {}
    asked: dict[tuple[str, str], Any] = {}
    found: list[Found] = []
    for ns, name in pairs:
        if (ns, name) in probes:
            asked[(ns, name)] = probes[(ns, name)]
        elif name not in RESERVED_NAMES and (handle := lookup(name, ns)) is not None:
            if hasattr(handle, "describe"):
                asked[(ns, name)] = handle.describe.remote()
            else:
                found.append(Found(ns, name, None, foreign=True))
    skip = set(unplaceable) | probes.keys()
    answers = collect({k: r for k, r in asked.items() if k not in skip}, timeout_s)
    answers.update(collect({k: r for k, r in asked.items() if k in skip}, 0))
    for (ns, name), answer in answers.items():
        info = answer.value
        if isinstance(answer.error, NoAnswer):
            found.append(Found(ns, name, None, probe=asked[(ns, name)]))
        elif isinstance(info, Mapping) and info.get("managed_by") == MANAGED_BY:
            found.append(Found(ns, name, dict(info)))
        elif not isinstance(answer.error, RayActorError):  # else it died after being listed
            found.append(Found(ns, name, None, foreign=True))
    return found


def _which(name: str, agent_id: str | None) -> tuple[str, ...]:
    """The agent argument of a call to actor ``name``: none for an agent's own actor, the
    agent's id for a pool host (so dedicated actors keep the calls they were started with)."""
    return () if agent_id in (None, name) else (str(agent_id),)


def start_agent(
    handle: Any, timeout_s: float, name: str = "", agent_id: str | None = None
) -> dict[str, Any] | None:
    """Run the agent's ``setup`` and return its ``describe()`` (state ``alive`` or
    ``failed``); None when not done within ``timeout_s`` (not placed yet, or a long setup:
    it goes on). ``RayActorError`` when the actor died (its runtime_env failed, say)."""
    try:
        ref = handle.start.remote(*(_which(name, agent_id) or (timeout_s,)))
        info = dict(ray.get(ref, timeout=timeout_s + PING_TIMEOUT_S))
    except GetTimeoutError:
        return None
    return None if info.get("state") == "starting" else info


def send_start(name: str, namespace: str, agent_id: str | None = None) -> None:
    """Ask an agent (in actor ``name``) to run its setup, without waiting (idempotent)."""
    handle = lookup(name, namespace)
    if handle is not None:
        send(handle, "start", *(_which(name, agent_id) or (0.0,)))


def stop_agent(name: str, namespace: str, grace_s: float, agent_id: str | None = None) -> bool:
    """Drain and shut the agent down, then kill its actor, or take it out of its pool host
    ``name`` (the neighbours go on); False when it was not there."""
    handle = lookup(name, namespace)
    if handle is None:
        return False
    which = _which(name, agent_id)
    pooled = bool(which)
    try:
        ask(handle, "stop", grace_s, *which, timeout_s=grace_s + PING_TIMEOUT_S + 5)
    except Exception as exc:  # dead, hung or foreign: killing it is all that is left
        log.info("%s/%s did not stop cleanly: %s", namespace, name, exc)
        if pooled:  # the host is dead or hung: the next pass sees what became of it
            return False
    if pooled:
        _room.pop((namespace, name.rpartition("-")[0]), None)  # it has room again
        return True
    return kill(name, namespace)


def drop_if_empty(name: str, namespace: str) -> bool:
    """Kill pool host ``name`` when it holds no agent; whether it did."""
    handle = lookup(name, namespace)
    try:
        empty = handle is not None and not ask(handle, "describe", timeout_s=5)["agents"]
    except (ActorGone, NoAnswer):
        return False
    return empty and kill(name, namespace)


def placement_problem(spec: AgentSpec, cluster_totals: Mapping[str, float]) -> str | None:
    """Why the cluster can never place this agent as it is, or None when it could.

    Compared with total (not free) resources: a busy cluster frees up, one without a GPU not.
    """
    res = spec.resources
    asks = {"CPU": res.num_cpus, "GPU": res.num_gpus, "memory": res.memory_bytes or 0, **res.custom}
    missing = [
        f"{name}={amount:g} (cluster has {cluster_totals.get(name, 0.0):g})"
        for name, amount in sorted(asks.items())
        if amount > cluster_totals.get(name, 0.0)
    ]
    return "cannot be placed: needs " + ", ".join(missing) if missing else None


def cluster_totals() -> dict[str, float]:
    """Total resources of the cluster (every node), as Ray reports them."""
    _joined()
    return {k: float(v) for k, v in ray.cluster_resources().items()}


# --- calls into actors -----------------------------------------------------------------------
class ActorGone(Exception):
    """The actor is dead, unreachable or not there: try another one."""


class NoAnswer(Exception):
    """The actor did not answer in time (it may still be working)."""


def send(handle: Any, method: str, *args: Any) -> Any:
    """Start ``method`` on the actor; its reference. AttributeError: it has no such method."""
    return getattr(handle, method).remote(*args)


def ask(handle: Any, method: str, *args: Any, timeout_s: float) -> Any:
    """Call ``method`` and wait: ``ActorGone`` when the actor died, ``NoAnswer`` on timeout."""
    try:
        return ray.get(send(handle, method, *args), timeout=timeout_s)
    except RayActorError as exc:
        raise ActorGone(f"actor died or is unreachable: {type(exc).__name__}") from exc
    except GetTimeoutError:
        raise NoAnswer(f"no answer within {timeout_s:g} s") from None


@dataclass(frozen=True)
class Answer:
    """One call's outcome: its value, or what it raised (``NoAnswer`` when it was late)."""

    value: Any = None
    error: Exception | None = None


def collect(refs: Mapping[_K, Any], timeout_s: float) -> dict[_K, Answer]:
    """Every call's ``Answer``, waiting at most ``timeout_s`` for all of them together."""
    if not refs:
        return {}
    done = set(ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)[0])
    answers: dict[_K, Answer] = {}
    for key, ref in refs.items():
        try:
            if ref not in done:
                raise NoAnswer(f"no answer within {timeout_s:g} s")
            answers[key] = Answer(ray.get(ref, timeout=0))
        except Exception as exc:
            answers[key] = Answer(error=exc)
    return answers


class RayDispatcher:
    """The router's way to agents: ``execute`` a task, ``ping`` for Ray's own discovery.

    Handles are kept (a lookup is a GCS round trip) until the actor dies; the dict's single
    get/set/pop calls are atomic, so threads share it without a lock."""

    def __init__(self) -> None:
        self._handles: dict[tuple[str, str], Any] = {}
        self._hosts: dict[str, tuple[float, dict[str, tuple[str, str]]]] = {}

    def _ask(self, name: str, namespace: str, method: str, *args: Any, timeout_s: float) -> Any:
        key = (namespace, name)
        cached = self._handles.get(key)
        handle = cached or lookup(name, namespace)
        if handle is None:
            raise ActorGone(f"Ray has no actor {name!r} in namespace {namespace!r}")
        self._handles[key] = handle
        try:
            return ask(handle, method, *args, timeout_s=timeout_s)
        except ActorGone:
            self._handles.pop(key, None)
            if cached is None:
                raise
        # the kept handle was of an actor since replaced under the same name: ask the new one
        return self._ask(name, namespace, method, *args, timeout_s=timeout_s)

    def execute(
        self,
        name: str,
        namespace: str,
        payload: Mapping[str, Any],
        timeout_s: float,
        agent_id: str | None = None,
    ) -> Any:
        """Run one task on the agent (in actor ``name``, its own or its pool host), in one
        call: ``ActorGone`` (try another) or ``NoAnswer``."""
        args = (dict(payload), *_which(name, agent_id))
        return self._ask(name, namespace, "execute", *args, timeout_s=timeout_s)

    def ping(self, agent_id: str, namespace: str) -> tuple[str, str] | None:
        """(actor name, instance id) while the agent serves, else None: a pool host that
        holds it (hosts are asked at most every ``HOSTS_TTL_S``), or its own actor."""
        hosted = self._hosted(namespace).get(agent_id)
        if hosted is not None:
            return hosted
        try:
            answer = self._ask(agent_id, namespace, "ping", timeout_s=PING_TIMEOUT_S)
        except (ActorGone, NoAnswer):
            return None
        return None if answer is None else (agent_id, str(answer))

    def _hosted(self, namespace: str) -> dict[str, tuple[str, str]]:
        """Agent id -> (host, instance id) of the pooled agents serving in ``namespace``."""
        at, known = self._hosts.get(namespace, (float("-inf"), {}))
        if time.monotonic() - at < HOSTS_TTL_S:
            return known
        names = [n for _, n in named_actors([namespace]) if n.startswith(POOL_PREFIX)]
        handles = {n: h for n in names if (h := lookup(n, namespace)) is not None}
        answers = collect({n: send(h, "serving") for n, h in handles.items()}, PING_TIMEOUT_S)
        known = {
            agent_id: (host, instance_id)
            for host, answer in answers.items()
            for agent_id, instance_id in (answer.value or {}).items()
        }
        self._hosts[namespace] = (time.monotonic(), known)
        return known


class _Lock:
    """The reconciler's fallback lock when PostgreSQL is down: it only says who holds it."""

    def __init__(self, holder: str) -> None:
        self._holder = holder

    def holder(self) -> str:
        return self._holder


def take_lock(name: str, namespace: str, holder: str) -> Any:
    """Hold ``name`` as a non-detached actor, so the lock dies with its owner.

    ``LeaderLockHeld`` names the holder when another process has it."""
    try:
        return start_actor(_Lock, name, namespace, holder)
    except ValueError:
        try:  # fails when the holder is gone meanwhile (no handle) or does not answer
            who = str(ask(lookup(name, namespace), "holder", timeout_s=5))
        except Exception:
            who = "another reconciler (Ray fallback lock)"
        raise LeaderLockHeld(who) from None
