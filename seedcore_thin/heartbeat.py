"""Liveness of agents in PostgreSQL through one relay actor per Ray namespace.

Why a relay and not the agents or the manager:
- agents beating themselves would open one PostgreSQL connection per agent; the relay holds
  a pool of one connection for its whole namespace and sends every beat of a round in one
  ``beat_many`` call (batched, ~33,000 beats/s here against ~2,800/s one by one);
- the manager only lives while a reconciler runs; the relay is a detached actor, so beats go
  on after ``scripts/reconcile.py apply`` exits, and it needs no CPU reservation (num_cpus=0).

Each round (every ``REGISTRY_BEAT_SEC``, default 5 s, with +-20 % jitter) the relay lists the
named actors of its namespace (one uncapped GCS call), asks new ones to describe themselves,
pings the agents it tracks, beats the ones that answered, and marks dead the ones Ray reports
dead, so a killed agent leaves ``active_instance`` within one or two rounds (the view's
stale window is the backstop when the relay itself dies). The registry being down never
touches the agents: the relay keeps pinging and, once PostgreSQL answers again, registers
every live agent anew under the current epoch, without restarting anything.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from seedcore_thin import actors
from seedcore_thin.errors import FencedEpoch, RegistryUnavailable, SeedcoreError
from seedcore_thin.planner import RELAY_NAME

log = logging.getLogger(__name__)

JITTER = 0.2
PING_TIMEOUT_S = 2.0
DISCOVER_WAIT_S = 0.5
EXPIRE_EVERY_ROUNDS = 3
# Registry down: the next round comes after this long, not a whole beat, so the fleet is
# back in active_instance within a few seconds of PostgreSQL's return.
DOWN_RETRY_S = 1.0


def dsn_fingerprint(dsn: str) -> str:
    """Compare DSNs without handing the secret in them to logs or actor state answers."""
    return hashlib.sha256(dsn.encode()).hexdigest()[:16]


def _record(info: Mapping[str, Any]) -> Any:
    """An agent's ``describe()`` answer as the registry's InstanceRecord."""
    from seedcore_thin.registry import InstanceRecord

    spec = info.get("spec") or {}
    return InstanceRecord(
        instance_id=uuid.UUID(str(info["instance_id"])),
        logical_id=str(info["agent_id"]),
        epoch=uuid.UUID(int=0),  # replaced by the current epoch when registering
        actor_name=str(info["agent_id"]),
        namespace=str(info["namespace"]),
        node_id=info.get("node_id"),
        ip_address=info.get("ip_address"),
        pid=info.get("pid"),
        metadata={
            "spec_hash": info.get("spec_hash"),
            "managed_by": info.get("managed_by"),
            "organ_id": spec.get("organ_id"),
            "skills": spec.get("skills", []),
            "models": spec.get("models", []),
            "policies": spec.get("policies", []),
            "num_gpus": (spec.get("resources") or {}).get("num_gpus", 0),
        },
    )


class HeartbeatRelay:
    """Beats every agent of one namespace into the registry; see the module docstring."""

    def __init__(self, namespace: str, dsn: str, beat_sec: float) -> None:
        self._dsn = dsn
        self._beat_sec = beat_sec
        self._namespace = namespace
        self._registry: Any = None
        self._epoch: uuid.UUID | None = None
        self._agents: dict[str, dict[str, Any]] = {}  # agent_id -> describe() answer
        self._registered: set[str] = set()  # instance ids registered under self._epoch
        self._foreign: set[str] = set()
        self._probes: dict[str, Any] = {}  # name -> outstanding describe() reference
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rounds = 0
        self._stats: dict[str, Any] = {"registry_up": None, "accepted": 0, "dead": 0}
        self._thread = threading.Thread(target=self._loop, name="heartbeat-relay", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- remote API
    def config(self) -> dict[str, Any]:
        return {"dsn": dsn_fingerprint(self._dsn), "beat_sec": self._beat_sec}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self._stats,
                "tracked": sorted(self._agents),
                "registered": len(self._registered),
                "rounds": self._rounds,
            }

    def sync(self, infos: list[dict[str, Any]]) -> dict[str, Any]:
        """Track agents the reconciler just created and run one round now, so
        active_instance is fresh on return."""
        with self._lock:
            self._agents.update((str(i["agent_id"]), dict(i)) for i in infos)
        return self.round()

    def round(self) -> dict[str, Any]:
        """One round: discover, ping, beat, mark the dead. Never raises."""
        with self._lock:
            try:
                self._discover()
                alive, dead = self._ping()
                self._write(alive, dead)
            except Exception as exc:  # the loop must survive anything
                log.warning("heartbeat round failed: %s", exc)
                self._stats["error"] = str(exc)
            self._rounds += 1
            return dict(self._stats)

    def stop(self) -> None:
        self._stop.set()

    # ---------------------------------------------------------------- internals
    def _loop(self) -> None:
        while not self._stop.is_set():
            up = self.round().get("registry_up") is not False
            jitter = random.uniform(1 - JITTER, 1 + JITTER)
            self._stop.wait(self._beat_sec * jitter if up else DOWN_RETRY_S)

    def _discover(self) -> None:
        """Ask new named actors who they are, without waiting for slow ones.

        An agent still waiting for resources cannot answer; its probe stays outstanding and
        is looked at again next round instead of stalling every round.
        """
        names = {name for _, name in actors.named_actors([self._namespace])}
        asked = len(self._probes)
        for name in names - set(self._agents) - self._foreign - set(self._probes) - {RELAY_NAME}:
            try:
                ref = actors.send_to(name, self._namespace, "describe")
            except AttributeError:
                self._foreign.add(name)
                continue
            if ref is not None:
                self._probes[name] = ref
        # wait a little for fresh probes only; old ones are just checked
        budget = DISCOVER_WAIT_S if len(self._probes) > asked else 0
        for name, answer in actors.collect(self._probes, budget).items():
            if answer.late:
                if name not in names:
                    del self._probes[name]
                continue
            del self._probes[name]
            if answer.dead:
                continue
            info = actors.agent_info(answer)
            if info is None:
                self._foreign.add(name)
            else:
                self._agents[name] = info
        self._foreign &= names

    def _ping(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Agents that answered, and agents Ray reports dead (dropped from tracking)."""
        refs = {a: actors.send_to(a, self._namespace, "ping") for a in self._agents}
        answers = actors.collect({a: r for a, r in refs.items() if r is not None}, PING_TIMEOUT_S)
        alive: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        for agent_id, info in list(self._agents.items()):
            answer = answers.get(agent_id)
            if answer is None or answer.dead:
                dead.append(info)
            elif answer.late:
                continue  # busy or starting: no beat, not dead either
            elif answer.value != info["instance_id"]:  # replaced: a new incarnation
                dead.append(info)
                self._agents.pop(agent_id, None)
            else:
                alive.append(info)
        for info in dead:
            current = self._agents.get(str(info["agent_id"]))
            if current is not None and current["instance_id"] == info["instance_id"]:
                del self._agents[str(info["agent_id"])]
        return alive, dead

    def _write(self, alive: list[dict[str, Any]], dead: list[dict[str, Any]]) -> None:
        try:
            registry = self._registry_client()
            epoch = registry.call("current_epoch")
            if epoch != self._epoch:
                self._epoch, self._registered = epoch, set()
            self._register(registry, [i for i in alive if i["instance_id"] not in self._registered])
            ids = [uuid.UUID(str(i["instance_id"])) for i in alive]
            accepted = registry.beat_many(ids, epoch)
            if accepted < len(ids):  # expired or revived elsewhere while we were away
                self._registered = set()
                self._register(registry, alive)
                accepted = registry.beat_many(ids, epoch)
            for info in dead:
                self._bury(registry, info)
            self._stats.update(registry_up=True, accepted=accepted, beat_at=time.time())
            self._stats.pop("error", None)
            if self._rounds % EXPIRE_EVERY_ROUNDS == 0:
                registry.expire_stale()
        except FencedEpoch:
            self._epoch, self._registered = None, set()
            self._stats["registry_up"] = True
        except RegistryUnavailable as exc:
            # Keep the agents untouched; register everyone again once it answers.
            self._epoch, self._registered = None, set()
            self._stats.update(registry_up=False, error=str(exc))

    def _register(self, registry: Any, infos: Iterable[dict[str, Any]]) -> None:
        from dataclasses import replace

        for info in infos:
            registry.register_instance(replace(_record(info), epoch=self._epoch))
            self._registered.add(str(info["instance_id"]))

    def _bury(self, registry: Any, info: Mapping[str, Any]) -> None:
        try:
            registry.call("deregister_instance", instance_id=uuid.UUID(str(info["instance_id"])))
        except SeedcoreError as exc:  # never registered (unknown instance): nothing to bury
            log.debug("deregister %s: %s", info.get("agent_id"), exc)
        self._registered.discard(str(info["instance_id"]))
        self._stats["dead"] = int(self._stats.get("dead", 0)) + 1

    def _registry_client(self) -> Any:
        if self._registry is None:
            from seedcore_thin.registry import Registry

            # one connection: the relay is one thread; beats go in one beat_many call
            self._registry = Registry(self._dsn, max_size=1)
        return self._registry


def ensure_relay(namespace: str, dsn: str, beat_sec: float) -> Any:
    """The namespace's relay, started when missing or restarted when its config changed.

    Never blocks on a relay that is still starting: a fresh one is returned at once.
    """
    want = {"dsn": dsn_fingerprint(dsn), "beat_sec": beat_sec}
    handle = actors.lookup(RELAY_NAME, namespace)
    if handle is not None:
        try:
            if actors.ask(handle, "config", timeout_s=PING_TIMEOUT_S) == want:
                return handle
        except Exception as exc:  # not answering: replace it
            log.info("heartbeat relay in %s not answering (%s); restarting it", namespace, exc)
        actors.kill(RELAY_NAME, namespace)
    return actors.start_actor(
        HeartbeatRelay, RELAY_NAME, namespace, namespace, dsn, beat_sec,
        lifetime="detached", max_concurrency=4, get_if_exists=True,
    )  # fmt: skip
