"""The pure ``plan(desired, actual)``: what to create, replace, remove or archive.

No I/O and no clock here, so every safety rule is a unit test and a property test. The
reconciler gathers the inputs (graph specs, Ray actors, backoff state) and carries the plan
out; the CLI prints ``Plan.to_json()``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ActionKind = Literal["create", "replace", "remove", "archive"]

# Names the runtime itself uses inside an agent namespace; an agent may not take them.
RELAY_NAME = "seedcore-heartbeat-relay"
LOCK_NAME = "seedcore-reconcile-lock"
RESERVED_NAMES = frozenset({RELAY_NAME, LOCK_NAME})

RULE_GRAPH_UNREACHABLE = "graph_unreachable"
RULE_EMPTY_GRAPH = "empty_graph"
RULE_MASS_REMOVAL = "mass_removal"
RULE_BACKOFF = "backoff"
RULE_UNMANAGED_NAME = "unmanaged_name_conflict"


@dataclass(frozen=True, slots=True)
class Desired:
    """One agent the graph asks for; ``spec`` rides along for apply, the planner ignores it."""

    agent_id: str
    namespace: str
    spec_hash: str
    spec: Any = None


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
    state: str = "alive"  # alive | pending
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InvalidEntry:
    """A spec that failed validation; its running actor, if any, is kept."""

    agent_id: str | None
    field: str
    reason: str
    namespace: str | None = None


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

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.agent_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agent_id": self.agent_id,
            "namespace": self.namespace,
            "action": self.kind,
            "reason": self.reason,
        }
        if self.spec_hash is not None:
            out["spec_hash"] = self.spec_hash
        if self.old_spec_hash is not None:
            out["old_spec_hash"] = self.old_spec_hash
        return out


@dataclass(frozen=True, slots=True)
class Entry:
    """An agent that needs nothing (in sync) or cannot progress yet (pending)."""

    agent_id: str
    namespace: str
    spec_hash: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"agent_id": self.agent_id, "namespace": self.namespace}
        if self.spec_hash is not None:
            out["spec_hash"] = self.spec_hash
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class HeldBack:
    """An action withheld by a safety ``rule`` (or by retry backoff), with the reason."""

    action: Action
    rule: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        out = self.action.to_json()
        out.update(rule=self.rule, reason=self.reason)
        return out


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
        return {
            "create": [a.to_json() for a in self.create],
            "replace": [a.to_json() for a in self.replace],
            "remove": [a.to_json() for a in self.remove],
            "archive": [a.to_json() for a in self.archive],
            "in_sync": [e.to_json() for e in self.in_sync],
            "pending": [e.to_json() for e in self.pending],
            "held_back": [h.to_json() for h in self.held_back],
            "invalid": [
                {
                    "agent_id": i.agent_id,
                    "namespace": i.namespace,
                    "field": i.field,
                    "reason": i.reason,
                }
                for i in self.invalid
            ],
            "graph_reachable": self.graph_reachable,
        }

    def summary(self) -> dict[str, int]:
        return {
            "create": len(self.create),
            "replace": len(self.replace),
            "remove": len(self.remove),
            "archive": len(self.archive),
            "in_sync": len(self.in_sync),
            "pending": len(self.pending),
            "held_back": len(self.held_back),
            "invalid": len(self.invalid),
        }


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
    reserved: Collection[str] = RESERVED_NAMES,
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
        if d.agent_id in reserved:
            invalid_list.append(
                InvalidEntry(d.agent_id, "agent_id", "name is reserved", d.namespace)
            )
        elif key in want:
            invalid_list.append(
                InvalidEntry(d.agent_id, "agent_id", "duplicate agent id", d.namespace)
            )
        else:
            want[key] = d
    have = {(a.namespace, a.agent_id): a for a in actual if a.agent_id not in reserved}

    create: list[Action] = []
    replace: list[Action] = []
    archive: list[Action] = []
    removals: list[Action] = []
    in_sync: list[Entry] = []
    pending: list[Entry] = []
    held: list[HeldBack] = []

    def ask(action: Action, out: list[Action]) -> None:
        why = backoff.get(action.key)
        if why is None:
            out.append(action)
        else:
            held.append(HeldBack(action, RULE_BACKOFF, why))

    for key, d in want.items():
        a = have.get(key)
        if a is None:
            ask(
                Action("create", d.agent_id, d.namespace, "missing", d.spec_hash, None, d.spec),
                create,
            )
        elif not a.managed:
            conflict = Action(
                "archive", a.agent_id, a.namespace, "unmanaged actor holds the agent's name"
            )
            if strict:
                archive.append(conflict)
                ask(
                    Action(
                        "create",
                        d.agent_id,
                        d.namespace,
                        "name freed by archive",
                        d.spec_hash,
                        None,
                        d.spec,
                    ),
                    create,
                )
            else:
                held.append(
                    HeldBack(
                        conflict,
                        RULE_UNMANAGED_NAME,
                        "an unmanaged actor holds this name; use strict mode",
                    )
                )
        elif a.spec_hash is None:
            pending.append(
                Entry(d.agent_id, d.namespace, d.spec_hash, a.reason or "not answering yet")
            )
        elif a.spec_hash != d.spec_hash:
            ask(
                Action(
                    "replace",
                    d.agent_id,
                    d.namespace,
                    "spec changed",
                    d.spec_hash,
                    a.spec_hash,
                    d.spec,
                ),
                replace,
            )
        elif a.state == "pending":
            pending.append(Entry(d.agent_id, d.namespace, d.spec_hash, a.reason or "pending"))
        else:
            in_sync.append(Entry(d.agent_id, d.namespace, d.spec_hash))

    managed_total = 0
    for key, a in have.items():
        managed_total += a.managed
        if key in want or a.agent_id in protected:
            continue
        if a.managed:
            removals.append(
                Action("remove", a.agent_id, a.namespace, "agent left the graph", None, a.spec_hash)
            )
        elif strict:
            archive.append(
                Action("archive", a.agent_id, a.namespace, "unmanaged actor (strict mode)")
            )

    rule, why = _removal_rule(
        n_removals=len(removals),
        n_archives=len(archive),
        n_managed=managed_total,
        n_valid=len(want),
        graph_reachable=graph_reachable,
        allow_mass_removal=allow_mass_removal,
        share=mass_removal_share,
    )
    if rule is not None:
        held.extend(HeldBack(r, rule, why) for r in removals)
        held.extend(HeldBack(r, rule, why) for r in archive)
        removals, archive = [], []
        # a create that needed an archived name must wait for the archive
        freed = {x.action.key for x in held if x.action.kind == "archive"}
        waits = "waits for the unmanaged actor holding its name to be archived"
        held.extend(HeldBack(c, rule, waits) for c in create if c.key in freed)
        create = [c for c in create if c.key not in freed]

    return Plan(
        create=_sorted(create),
        replace=_sorted(replace),
        remove=_sorted(removals),
        archive=_sorted(archive),
        in_sync=_sorted(in_sync),
        pending=_sorted(pending),
        held_back=tuple(sorted(held, key=lambda h: (h.action.namespace, h.action.agent_id))),
        invalid=tuple(invalid_list),
        graph_reachable=graph_reachable,
    )


def _removal_rule(
    *,
    n_removals: int,
    n_archives: int,
    n_managed: int,
    n_valid: int,
    graph_reachable: bool,
    allow_mass_removal: bool,
    share: float,
) -> tuple[str | None, str]:
    """Which safety rule, if any, withholds this pass's removals.

    The share counts removals of managed actors only: archiving unmanaged actors is what
    an operator asked for by turning strict mode on.
    """
    if n_removals + n_archives == 0:
        return None, ""
    if not graph_reachable:
        return RULE_GRAPH_UNREACHABLE, "the graph is unreachable: nothing is removed"
    if allow_mass_removal:
        return None, ""
    if n_valid == 0:
        return RULE_EMPTY_GRAPH, "the graph returned no agents; pass --allow-mass-removal"
    if n_removals and n_removals > share * max(n_managed, 1):
        return (
            RULE_MASS_REMOVAL,
            f"{n_removals} removals exceed {share:.0%} of {n_managed} managed actors; "
            "pass --allow-mass-removal",
        )
    return None, ""
