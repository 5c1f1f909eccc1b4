"""The pure ``plan(desired, actual)``: what to create, replace, remove or archive.

No I/O and no clock here, so every safety rule is a unit test and a property test. The
reconciler gathers the inputs (graph specs, Ray actors, backoff state) and carries the plan
out; the CLI prints ``Plan.to_json()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

ActionKind = Literal["create", "replace", "remove", "archive"]

# Names the runtime itself uses inside an agent namespace; an agent may not take them.
RELAY_NAME = "seedcore-heartbeat-relay"
LOCK_NAME = "seedcore-reconcile-lock"
RESERVED_NAMES = frozenset({RELAY_NAME, LOCK_NAME})
#: Pooled agents' host actors are named ``seedcore-pool-<organ>-<shape>-<n>``: never an agent.
POOL_PREFIX = "seedcore-pool-"


def reserved(name: str) -> bool:
    """A name the runtime keeps for itself (relay, lock, pool hosts)."""
    return name in RESERVED_NAMES or name.startswith(POOL_PREFIX)


# The safety rules, named in every step they hold back (docs/architecture.md lists them).
RULE_GRAPH_UNREACHABLE = "graph_unreachable"
RULE_EMPTY_GRAPH = "empty_graph"
RULE_MASS_REMOVAL = "mass_removal"
RULE_BACKOFF = "backoff"
RULE_UNMANAGED_NAME = "unmanaged_name_conflict"

BUCKETS = ("create", "replace", "remove", "archive", "in_sync", "pending", "held_back", "invalid")
CONFLICT = "unmanaged actor holds the agent's name"


def _set_fields(item: Any) -> dict[str, Any]:
    """The fields that carry a value, without the spec: a step as the CLI and audit store it."""
    values = ((f.name, getattr(item, f.name)) for f in fields(item) if f.name != "spec")
    return {name: value for name, value in values if value is not None}


@dataclass(frozen=True, slots=True)
class Desired:
    """One agent the graph asks for; ``spec`` rides along for apply, the planner ignores it.

    ``home`` is where it will live: its own actor (named by its id) or a pool's name."""

    agent_id: str
    namespace: str
    spec_hash: str
    spec: Any = None
    home: str | None = None


@dataclass(frozen=True, slots=True)
class Actual:
    """One named Ray actor found in scope.

    ``spec_hash`` is None when the actor did not answer (still pending placement, or busy)
    and nobody remembers what it was started from; ``managed`` says the seedcore marker was
    seen (or our own audit says we created it).
    """

    agent_id: str
    namespace: str
    spec_hash: str | None
    managed: bool
    state: str = "alive"  # alive | pending | failed (its setup failed)
    reason: str | None = None
    home: str | None = None  # the actor it lives in: its own (its id) or a pool host


@dataclass(frozen=True, slots=True)
class InvalidEntry:
    """A spec that failed validation; its running actor, if any, is kept."""

    agent_id: str | None
    field: str
    reason: str
    namespace: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan; ``spec`` is the desired spec for create/replace."""

    kind: ActionKind
    agent_id: str
    namespace: str
    reason: str
    spec_hash: str | None = None
    old_spec_hash: str | None = None
    spec: Any = field(default=None, compare=False, repr=False)
    home: str | None = None  # create/replace: where it goes; remove: where it lives

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.agent_id)

    def to_json(self) -> dict[str, Any]:
        out = _set_fields(self)
        out["action"] = out.pop("kind")
        return out


@dataclass(frozen=True, slots=True)
class Entry:
    """An agent that needs nothing (in sync) or cannot progress yet (pending)."""

    agent_id: str
    namespace: str
    spec_hash: str | None = None
    reason: str | None = None
    home: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _set_fields(self)


@dataclass(frozen=True, slots=True)
class HeldBack:
    """An action withheld by a safety ``rule`` (or by retry backoff), with the reason."""

    action: Action
    rule: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**self.action.to_json(), "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    """The difference between the graph and Ray, as lists the CLI and the audit print."""

    create: tuple[Action, ...] = ()
    replace: tuple[Action, ...] = ()
    remove: tuple[Action, ...] = ()
    archive: tuple[Action, ...] = ()
    in_sync: tuple[Entry, ...] = ()
    pending: tuple[Entry, ...] = ()
    held_back: tuple[HeldBack, ...] = ()
    invalid: tuple[InvalidEntry, ...] = ()
    graph_reachable: bool = True

    @property
    def actions(self) -> tuple[Action, ...]:
        """Archive first (it may free a name a create needs), then the rest."""
        return self.archive + self.remove + self.replace + self.create

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {b: [x.to_json() for x in getattr(self, b)] for b in BUCKETS}
        out["graph_reachable"] = self.graph_reachable
        return out

    def summary(self) -> dict[str, int]:
        return {b: len(getattr(self, b)) for b in BUCKETS}


def _sorted(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(items, key=lambda x: (x.namespace or "", x.agent_id or "")))


def plan(
    desired: Iterable[Desired],
    actual: Iterable[Actual],
    *,
    invalid: Iterable[InvalidEntry] = (),
    graph_reachable: bool = True,
    strict: bool = False,
    allow_mass_removal: bool = False,
    mass_removal_share: float = 0.5,
    backoff: Mapping[tuple[str, str], str] | None = None,
) -> Plan:
    """Compare desired agents with actual actors, keyed by (namespace, agent id).

    Safety: with the graph unreachable nothing is removed (not even with
    ``allow_mass_removal``: an outage is not an instruction); with no valid agents, or when
    removals exceed ``mass_removal_share`` of the managed actors, removals are held back
    unless ``allow_mass_removal``. ``backoff`` maps a key to a reason for agents whose last
    action failed recently: their create/replace waits for a later pass.
    """
    backoff = backoff or {}
    invalid_list = list(invalid)
    protected = {i.agent_id for i in invalid_list if i.agent_id}
    want: dict[tuple[str, str], Desired] = {}
    for d in desired:
        key = (d.namespace, d.agent_id)
        if key in want or reserved(d.agent_id):
            clash = "name is reserved" if reserved(d.agent_id) else "duplicate agent id"
            invalid_list.append(InvalidEntry(d.agent_id, "agent_id", clash, d.namespace))
        else:
            want[key] = d
    have = {(a.namespace, a.agent_id): a for a in actual if not reserved(a.agent_id)}

    create: list[Action] = []
    replace: list[Action] = []
    archive: list[Action] = []
    removals: list[Action] = []
    in_sync: list[Entry] = []
    pending: list[Entry] = []
    held: list[HeldBack] = []

    def start(d: Desired, kind: ActionKind, reason: str, old_hash: str | None = None) -> None:
        """Ask for a create or replace, unless the agent is in retry backoff."""
        action = Action(
            kind, d.agent_id, d.namespace, reason, d.spec_hash, old_hash, d.spec, d.home
        )
        wait = backoff.get(action.key)
        if wait is not None:
            held.append(HeldBack(action, RULE_BACKOFF, wait))
        else:
            (create if kind == "create" else replace).append(action)

    for key, d in want.items():
        a = have.get(key)
        if a is None:
            start(d, "create", "missing")
        elif not a.managed and strict:
            archive.append(Action("archive", a.agent_id, a.namespace, CONFLICT))
            start(d, "create", "name freed by archive")
        elif not a.managed:
            why = "an unmanaged actor holds this name; use strict mode"
            conflict = Action("archive", a.agent_id, a.namespace, CONFLICT)
            held.append(HeldBack(conflict, RULE_UNMANAGED_NAME, why))
        elif a.spec_hash is None:
            reason = a.reason or "not answering yet"
            pending.append(Entry(d.agent_id, d.namespace, d.spec_hash, reason, a.home))
        elif a.spec_hash != d.spec_hash:
            start(d, "replace", "spec changed", a.spec_hash)
        elif a.state == "failed":  # its setup failed after the pass that started it
            start(d, "replace", a.reason or "setup failed", a.spec_hash)
        elif a.state == "pending":
            why = a.reason or "pending"
            pending.append(Entry(d.agent_id, d.namespace, d.spec_hash, why, a.home))
        else:
            in_sync.append(Entry(d.agent_id, d.namespace, d.spec_hash, home=a.home))

    for key, a in have.items():
        if key in want or a.agent_id in protected:
            continue
        if a.managed:
            gone = "agent left the graph"
            removals.append(
                Action("remove", a.agent_id, a.namespace, gone, None, a.spec_hash, home=a.home)
            )
        elif strict:
            why = "unmanaged actor (strict mode)"
            archive.append(Action("archive", a.agent_id, a.namespace, why))

    # The safety rules that hold every removal and archive of this pass back. The share
    # counts managed actors only: archiving unmanaged ones is what strict mode asks for.
    n_managed = sum(a.managed for a in have.values())
    too_many = len(removals) > mass_removal_share * max(n_managed, 1)
    rule: tuple[str, str] | None = None
    if not graph_reachable:
        rule = RULE_GRAPH_UNREACHABLE, "the graph is unreachable: nothing is removed"
    elif not allow_mass_removal and not want:
        rule = RULE_EMPTY_GRAPH, "the graph returned no agents; pass --allow-mass-removal"
    elif not allow_mass_removal and removals and too_many:
        why = f"{len(removals)} removals exceed {mass_removal_share:.0%} of {n_managed} managed"
        rule = RULE_MASS_REMOVAL, f"{why} actors; pass --allow-mass-removal"
    if rule is not None and (removals or archive):
        name, why = rule
        held.extend(HeldBack(r, name, why) for r in removals + archive)
        removals, archive = [], []
        # a create that needed an archived name must wait for the archive
        freed = {x.action.key for x in held if x.action.kind == "archive"}
        waits = "waits for the unmanaged actor holding its name to be archived"
        held.extend(HeldBack(c, name, waits) for c in create if c.key in freed)
        create = [c for c in create if c.key not in freed]

    return Plan(
        create=_sorted(create),
        replace=_sorted(replace),
        remove=_sorted(removals),
        archive=_sorted(archive),
        in_sync=_sorted(in_sync),
        pending=_sorted(pending),
        held_back=tuple(sorted(held, key=lambda h: h.action.key)),
        invalid=tuple(invalid_list),
        graph_reachable=graph_reachable,
    )
