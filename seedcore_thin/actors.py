"""The ``AgentActor`` Ray actor and discovery of named actors by their predictable names.

One detached actor per agent, named by the agent id, so any process finds it with
``ray.get_actor(name, namespace=...)`` and it outlives the process that created it. The
actor carries the hash of the spec it was started from and a managed-by marker: that is how
the reconciler tells its own actors from foreign ones and sees a changed spec, even when
PostgreSQL is down. Discovery never scans the state API (capped at 100 rows): it lists
names with ``ray.util.list_named_actors`` and asks each actor to describe itself.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from seedcore_thin.planner import RESERVED_NAMES
from seedcore_thin.specs import AgentSpec

MANAGED_BY = "seedcore_thin"
# ping must answer while a long task runs, so an agent serves at least two calls at once
MIN_CONCURRENCY = 2
_NAME_RELEASE_POLL_S = 0.05


class AgentActor:
    """One agent. Stateless apart from counters: the graph is the source of its spec."""

    def __init__(
        self, agent_id: str, namespace: str, spec_hash: str, spec: Mapping[str, Any]
    ) -> None:
        # the namespace is passed in: the runtime context reports the creating job's one
        ctx = ray.get_runtime_context()
        self._info: dict[str, Any] = {
            "agent_id": agent_id,
            "namespace": namespace,
            "instance_id": str(uuid.uuid4()),
            "spec_hash": spec_hash,
            "managed_by": MANAGED_BY,
            "node_id": ctx.get_node_id(),
            "ip_address": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "started_at": time.time(),
            "spec": dict(spec),
        }
        self._tasks_done = 0

    def ping(self) -> str:
        """Cheap liveness probe; returns the instance id."""
        return str(self._info["instance_id"])

    def describe(self) -> dict[str, Any]:
        """Who this actor is: agent id, instance id, spec hash, marker, node, pid."""
        return {**self._info, "tasks_done": self._tasks_done}

    def execute(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """Run one task; the thin runtime answers with who ran it and echoes the payload."""
        self._tasks_done += 1
        return {
            "status": "completed",
            "agent_id": self._info["agent_id"],
            "instance_id": self._info["instance_id"],
            "node_id": self._info["node_id"],
            "task_type": task.get("task_type"),
            "result": task.get("data"),
        }


RemoteAgentActor = ray.remote(AgentActor)


def namespace_of(spec: AgentSpec, default: str) -> str:
    """The spec's namespace, else the runtime default (``config.default_namespace()``)."""
    return spec.namespace or default


def actor_options(spec: AgentSpec, namespace: str) -> dict[str, Any]:
    """Ray ``.options()`` for an agent: name, namespace, lifetime and resources."""
    res = spec.resources
    opts: dict[str, Any] = {
        "name": spec.agent_id,
        "namespace": namespace,
        "num_cpus": res.num_cpus,
        "num_gpus": res.num_gpus,
        "max_concurrency": max(MIN_CONCURRENCY, spec.max_concurrency),
    }
    if spec.lifetime == "detached":
        opts["lifetime"] = "detached"
    if res.memory_bytes:
        opts["memory"] = res.memory_bytes
    if res.custom:
        opts["resources"] = dict(res.custom)
    return opts


def create_agent(spec: AgentSpec, namespace: str) -> Any:
    """Start the agent's actor; raises ``ValueError`` when the name is already taken."""
    return RemoteAgentActor.options(**actor_options(spec, namespace)).remote(
        spec.agent_id, namespace, spec.spec_hash(), spec.model_dump(mode="json")
    )


def lookup(name: str, namespace: str) -> Any | None:
    """The named actor's handle, or None when no such actor is alive or pending."""
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def kill(name: str, namespace: str, *, wait_s: float = 10.0) -> bool:
    """Kill a named actor and wait until its name is free; False when it was not there."""
    handle = lookup(name, namespace)
    if handle is None:
        return False
    ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and lookup(name, namespace) is not None:
        time.sleep(_NAME_RELEASE_POLL_S)
    return True


def named_actors(namespaces: Collection[str] | None = None) -> list[tuple[str, str]]:
    """(namespace, name) of every named actor, optionally only in ``namespaces``.

    ``list_named_actors(all_namespaces=True)`` asks the GCS directly and is not capped.
    """
    rows = ray.util.list_named_actors(all_namespaces=True)
    pairs = [(str(r["namespace"]), str(r["name"])) for r in rows]
    if namespaces is not None:
        wanted = set(namespaces)
        pairs = [p for p in pairs if p[0] in wanted]
    return sorted(pairs)


@dataclass(frozen=True)
class Found:
    """One named actor: ``info`` is its ``describe()`` answer, None when it did not answer.

    ``foreign`` means it answered but is not ours (no ``describe``, or another marker).
    """

    namespace: str
    name: str
    info: Mapping[str, Any] | None
    foreign: bool = False

    @property
    def managed(self) -> bool:
        return self.info is not None and self.info.get("managed_by") == MANAGED_BY


def describe_all(
    pairs: Iterable[tuple[str, str]],
    *,
    timeout_s: float = 2.0,
    unplaceable: Collection[tuple[str, str]] = (),
) -> list[Found]:
    """Ask every named actor to describe itself, in parallel, waiting at most ``timeout_s``.

    Actors in ``unplaceable`` (known to need resources the cluster lacks) are not waited
    for. Actors that died meanwhile are left out; runtime-reserved names are skipped.
    """
    handles: list[tuple[str, str, Any]] = []
    found: list[Found] = []
    for ns, name in pairs:
        if name in RESERVED_NAMES:
            continue
        handle = lookup(name, ns)
        if handle is None:
            continue
        try:
            ref = handle.describe.remote()
        except AttributeError:
            found.append(Found(ns, name, None, foreign=True))
            continue
        handles.append((ns, name, ref))
    skip = set(unplaceable)
    refs = [ref for ns, name, ref in handles if (ns, name) not in skip]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s) if refs else ([], [])
    rest = [ref for ns, name, ref in handles if (ns, name) in skip]
    late, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
    ready_set = set(ready) | set(late)
    for ns, name, ref in handles:
        if ref not in ready_set:
            found.append(Found(ns, name, None))
            continue
        try:
            info = ray.get(ref, timeout=0)
        except RayActorError:
            continue  # died between listing and asking: it is not there any more
        except Exception:  # a foreign describe() that raised
            found.append(Found(ns, name, None, foreign=True))
            continue
        if isinstance(info, Mapping) and info.get("managed_by") == MANAGED_BY:
            found.append(Found(ns, name, info))
        else:
            found.append(Found(ns, name, None, foreign=True))
    return found


def wait_ready(handle: Any, timeout_s: float) -> dict[str, Any] | None:
    """The actor's ``describe()`` once it answers; None on timeout (still pending).

    Raises ``RayActorError`` when the actor died while starting.
    """
    try:
        return dict(ray.get(handle.describe.remote(), timeout=timeout_s))
    except GetTimeoutError:
        return None


def placement_problem(spec: AgentSpec, cluster_totals: Mapping[str, float]) -> str | None:
    """Why the cluster can never place this agent as it is, or None when it could.

    Compares the request with the cluster's total (not free) resources: a busy cluster
    frees up, a cluster without a GPU does not.
    """
    res = spec.resources
    asks: dict[str, float] = {"CPU": res.num_cpus, "GPU": res.num_gpus, **res.custom}
    if res.memory_bytes:
        asks["memory"] = float(res.memory_bytes)
    missing = [
        f"{name}={amount:g} (cluster has {cluster_totals.get(name, 0.0):g})"
        for name, amount in sorted(asks.items())
        if amount > 0 and amount > cluster_totals.get(name, 0.0)
    ]
    return "cannot be placed: needs " + ", ".join(missing) if missing else None


def cluster_totals() -> dict[str, float]:
    """Total resources of the cluster (every node), as Ray reports them."""
    return {k: float(v) for k, v in ray.cluster_resources().items()}
