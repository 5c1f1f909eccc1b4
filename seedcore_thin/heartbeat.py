"""Liveness of agents in PostgreSQL through one relay actor per Ray namespace.

Not the agents themselves: that would be a PostgreSQL connection per agent, where the relay
holds one and sends a round's beats in one ``beat_many`` call (~33,000 beats/s here against
~2,800/s one by one). Not the manager: it lives only while a reconciler runs, where the relay
is a detached actor (reserving no CPU) that beats on after ``apply`` exits. A registry that
is down never touches the agents: once it answers again, every live agent is registered anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
import uuid
from typing import Any

from seedcore_thin import actors
from seedcore_thin.errors import FencedEpoch, RegistryUnavailable, UnknownInstance
from seedcore_thin.planner import RELAY_NAME
from seedcore_thin.registry import InstanceRecord, Registry

log = logging.getLogger(__name__)

JITTER = 0.2
EXPIRE_EVERY_ROUNDS = 3
# Registry down: the next round comes after this long, not a whole beat, so the fleet is
# back in active_instance within a few seconds of PostgreSQL's return.
DOWN_RETRY_S = 1.0

Info = dict[str, Any]  # an agent's describe() answer


def _config(dsn: str, beat_sec: float) -> dict[str, Any]:
    """What a relay runs with; the DSN only as a hash, to keep its secret out of answers."""
    return {"dsn": hashlib.sha256(dsn.encode()).hexdigest()[:16], "beat_sec": beat_sec}


def _register(registry: Registry, info: Info, epoch: uuid.UUID) -> None:
    """Register an agent from its ``describe()`` answer (idempotent)."""
    spec = info.get("spec") or {}
    record = InstanceRecord(
        instance_id=uuid.UUID(info["instance_id"]),
        logical_id=info["agent_id"],
        epoch=epoch,
        actor_name=info.get("actor_name") or info["agent_id"],
        namespace=info["namespace"],
        **{key: info.get(key) for key in ("node_id", "ip_address", "pid")},
        metadata={
            "spec_hash": info.get("spec_hash"),
            "managed_by": info.get("managed_by"),
            "organ_id": spec.get("organ_id"),
            "placement": spec.get("placement", "dedicated"),
            **{key: spec.get(key, []) for key in ("skills", "models", "policies")},
            "num_gpus": (spec.get("resources") or {}).get("num_gpus", 0),
        },
    )
    registry.register_instance(record)


def register_live(registry: Registry, infos: list[Info]) -> int:
    """Register and beat agents whose setup just returned (their ``describe()`` answers), so
    they are in active_instance at once, whenever their relay gets to them; how many."""
    epoch = registry.call("current_epoch")
    live = [info for info in infos if info.get("state", "alive") == "alive"]
    for info in live:
        _register(registry, info, epoch)
    return registry.beat_many([uuid.UUID(info["instance_id"]) for info in live], epoch)


def _set_status(registry: Registry, info: Info, status: str) -> None:
    with contextlib.suppress(UnknownInstance):  # not registered yet: the next round does
        registry.call(
            "set_instance_status", instance_id=uuid.UUID(info["instance_id"]), status=status
        )


class HeartbeatRelay:
    """Every ``REGISTRY_BEAT_SEC`` (+-20 %), beats the agents of one namespace that answer and
    marks dead the ones gone: a killed agent leaves ``active_instance`` within a round or two
    (the view's stale window is the backstop should the relay itself die)."""

    def __init__(self, namespace: str, dsn: str, beat_sec: float) -> None:
        self._namespace = namespace
        self._config = _config(dsn, beat_sec)
        # one connection: the relay is one thread; beats go in one beat_many call
        self._registry = Registry(dsn, max_size=1)
        self._agents: dict[str, Info] = {}  # instance id -> its agent's describe() answer
        self._probes: dict[tuple[str, str], Any] = {}  # describe() questions not answered
        self._rounds = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._loop, name="heartbeat-relay", daemon=True).start()

    def config(self) -> dict[str, Any]:
        return self._config

    def round(self) -> dict[str, Any]:
        """One round: ask every agent, beat the live ones, mark the dead. Never raises."""
        with self._lock:
            self._rounds += 1
            try:
                return self._write(*self._look())
            except Exception as exc:  # the loop must survive anything
                log.warning("heartbeat round failed: %s", exc)
                return {"error": str(exc)}

    def _loop(self) -> None:
        while True:
            up = self.round().get("registry_up") is not False
            beat = self._config["beat_sec"] * random.uniform(1 - JITTER, 1 + JITTER)
            time.sleep(beat if up else DOWN_RETRY_S)

    def _look(self) -> tuple[list[Info], list[Info], list[Info]]:
        """Agents that answered (to beat), the new among them, and the gone or replaced.

        A pool host answers for all of its agents. An actor not answering in time (busy, or
        waiting for resources) is neither beaten nor buried; its question stays
        outstanding, so no later round waits on it again."""
        listed = actors.named_actors([self._namespace])
        found = actors.describe_all(listed, timeout_s=actors.PING_TIMEOUT_S, probes=self._probes)
        self._probes = {(f.namespace, f.name): f.probe for f in found if f.probe is not None}
        waiting = {name for _, name in self._probes}
        now = {
            agent["instance_id"]: {"actor_name": f.name, **agent}
            for f in found
            if f.info is not None
            for agent in actors.agents_of(f.info)
        }
        kept = {k: i for k, i in self._agents.items() if i["actor_name"] in waiting}
        before = {k: i for k, i in self._agents.items() if k not in kept}
        self._agents = kept | now
        new = [now[k] for k in now.keys() - before.keys()]
        dead = [before[k] for k in before.keys() - now.keys()]
        return list(now.values()), new, dead

    def _write(self, answered: list[Info], new: list[Info], dead: list[Info]) -> dict[str, Any]:
        """Register the new, beat the serving, mark the dead, expire the silent now and then.

        The agent's own state decides: ``starting`` (setup running) is registered and kept
        fresh but never beaten, since a beat makes it ``alive``, i.e. routable; ``draining``
        is marked so and beaten; ``failed`` or ``dead`` user code is marked dead."""
        registry = self._registry
        state = {info["instance_id"]: info.get("state", "alive") for info in answered}
        serving = [i for i in answered if state[i["instance_id"]] in ("alive", "draining")]
        dead = dead + [i for i in answered if state[i["instance_id"]] in ("failed", "dead")]
        try:
            epoch = registry.call("current_epoch")
            for info in new + [i for i in answered if state[i["instance_id"]] == "starting"]:
                _register(registry, info, epoch)
            for info in serving:
                if state[info["instance_id"]] == "draining":
                    _set_status(registry, info, "draining")
            ids = [uuid.UUID(info["instance_id"]) for info in serving]
            accepted = registry.beat_many(ids, epoch)
            # registry back, epoch rotated, expired or revived elsewhere: register all anew
            if accepted < len(ids):
                for info in serving:
                    if state[info["instance_id"]] == "alive":
                        _register(registry, info, epoch)
                accepted = registry.beat_many(ids, epoch)
            for info in dead:
                try:
                    registry.call("deregister_instance", instance_id=uuid.UUID(info["instance_id"]))
                except UnknownInstance as exc:  # never registered: nothing to mark
                    log.debug("deregister %s: %s", info.get("agent_id"), exc)
            if self._rounds % EXPIRE_EVERY_ROUNDS == 1:  # the first round, then every few
                registry.expire_stale()
            return {"registry_up": True, "accepted": accepted}
        except FencedEpoch as exc:  # the epoch rotated meanwhile: the next round registers
            return {"registry_up": True, "error": str(exc)}
        except RegistryUnavailable as exc:  # agents untouched; all registered when it is back
            return {"registry_up": False, "error": str(exc)}


def ensure_relay(namespace: str, dsn: str, beat_sec: float) -> Any:
    """The namespace's relay, (re)started when missing or its config changed; never waited for."""
    want = _config(dsn, beat_sec)
    handle = actors.lookup(RELAY_NAME, namespace)
    if handle is not None:
        try:
            if actors.ask(handle, "config", timeout_s=actors.PING_TIMEOUT_S) == want:
                return handle
        except Exception as exc:  # not answering: replace it
            log.info("heartbeat relay in %s not answering (%s); restarting it", namespace, exc)
        actors.kill(RELAY_NAME, namespace)
    return actors.start_actor(
        HeartbeatRelay, RELAY_NAME, namespace, namespace, dsn, beat_sec,
        lifetime="detached", max_concurrency=4, get_if_exists=True,
    )  # fmt: skip
