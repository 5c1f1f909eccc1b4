"""``scripts/fleet.py --html fleet.html [--dot fleet.dot]``: a picture of the fleet.

Reads the desired state from the graph (organs, agents, policies and the MEMBER_OF and
GOVERNED_BY edges) and what PostgreSQL knows of each agent (``active_instance``, instances
still starting, the reconcile audit), gives every agent one state, and writes one
self-contained HTML page (inline CSS, JS and SVG: it opens offline) and/or Graphviz DOT.

States, first match wins: ``invalid`` (the graph node is not a valid spec), ``live`` (in
``active_instance``), ``starting`` (registered, setup running), ``setup failed`` (its latest
create/replace failed), ``pending`` (created and waiting for resources, or pending in the
latest audited plan), ``not live`` (anything else desired). With the registry unreachable the
page still renders from the graph, every valid agent ``unknown (registry down)``.

Exit codes: 0 written, 1 an error (unreachable graph, unwritable file).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from seedcore_thin.config import Settings, state_dir
from seedcore_thin.errors import RegistryUnavailable, SeedcoreError
from seedcore_thin.local import pg_dsn as resolve_dsn
from seedcore_thin.specs import AgentSpec, agent_spec_from_row

log = logging.getLogger(__name__)

#: slug -> (label, strong colour, light fill), in the legend's order.
STATES: dict[str, tuple[str, str, str]] = {
    "live": ("live", "#1f8f4e", "#e2f4e8"),
    "starting": ("starting", "#2f6fb5", "#e3eefa"),
    "pending": ("pending", "#b7791f", "#fcf1dc"),
    "setup-failed": ("setup failed", "#c53030", "#fbe3e3"),
    "invalid": ("invalid", "#7b3fa0", "#f1e6f7"),
    "not-live": ("not live", "#5f6b7a", "#eceff3"),
    "unknown": ("unknown (registry down)", "#8a8f98", "#f5f5f6"),
}
NO_ORGAN = "(no organ)"

# Geometry of the drawing, in SVG pixels.
PAD, NODE_W, NODE_H, NODE_GAP = 24, 250, 84, 12
COL_W, COL_GAP, HEADER_H, BUS = NODE_W + 40, 36, 58, 14
POLICY_W, POLICY_H, POLICY_GAP, POLICY_ROW = 250, 62, 26, 150


@dataclass
class AgentView:
    """One agent as drawn: its place in the graph, its state and what the panel shows."""

    agent_id: str
    organ_id: str
    namespace: str
    state: str
    detail: str
    name: str | None = None
    skills: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    instance: dict[str, Any] | None = None
    last_step: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return STATES[self.state][0]

    def panel(self, organ_policies: Sequence[str]) -> dict[str, Any]:
        """What the page's side panel shows when the agent is hovered or clicked."""
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "state": self.state,
            "state_label": self.label,
            "detail": self.detail,
            "organ_id": self.organ_id,
            "namespace": self.namespace,
            "skills": self.skills,
            "models": self.models,
            "services": self.services,
            "policies": self.policies,
            "organ_policies": list(organ_policies),
            "problems": self.problems,
            "instance": self.instance,
            "last_step": self.last_step,
            "spec": self.spec,
        }


@dataclass
class Fleet:
    """Everything the page and the DOT file are rendered from."""

    generated_at: datetime
    graph_version: int
    registry: str  # "reachable", or why not
    organs: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    agents: list[AgentView]
    unmanaged_live: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {slug: sum(a.state == slug for a in self.agents) for slug in STATES}


@dataclass
class RuntimeFacts:
    """What PostgreSQL knows, keyed by agent id (and namespace for the audit)."""

    live: dict[str, dict[str, Any]]
    starting: dict[str, dict[str, Any]]
    audit: dict[tuple[str, str], dict[str, Any]]


# --------------------------------------------------------------------------- reading
def _iso(value: Any) -> Any:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


def read_runtime(registry: Any) -> RuntimeFacts:
    """The three registry reads; RegistryUnavailable when PostgreSQL does not answer."""
    live = {
        row.logical_id: {
            "source": "active_instance",
            "instance_id": str(row.instance_id),
            "node_id": row.node_id,
            "ip_address": row.ip_address,
            "pid": row.pid,
            "namespace": row.namespace,
            "started_at": _iso(row.started_at),
            "last_heartbeat": _iso(row.last_heartbeat),
            "live_replicas": row.live_replicas,
        }
        for row in registry.active_instances()
    }
    starting: dict[str, dict[str, Any]] = {}
    for row in registry.call("starting_instances"):
        entry = {k: _iso(v) for k, v in row.items() if k != "logical_id"}
        entry["instance_id"] = str(row["instance_id"])
        starting.setdefault(row["logical_id"], {"source": "starting_instances", **entry})
    audit = {
        (row["namespace"], row["agent_id"]): {k: _iso(v) for k, v in row.items()}
        for row in registry.call("reconcile_agent_state")
    }
    return RuntimeFacts(live, starting, audit)


def classify(
    agent_id: str, namespace: str, problems: Sequence[str], facts: RuntimeFacts | None
) -> tuple[str, str]:
    """(state slug, why) of one agent; the module docstring gives the order."""
    if problems:
        return "invalid", "; ".join(problems)
    if facts is None:
        return "unknown", "the registry (PostgreSQL) did not answer"
    if (live := facts.live.get(agent_id)) is not None:
        where = f"{live['ip_address'] or '?'}:{live['pid'] or '?'}"
        return "live", f"instance {live['instance_id'][:8]} on {where}"
    if agent_id in facts.starting:
        return "starting", "registered, setup still running (no heartbeat yet)"
    step = facts.audit.get((namespace, agent_id)) or {}
    if step.get("last_kind") in ("create", "replace") and step.get("last_outcome") == "failed":
        return "setup-failed", str(step.get("last_error") or f"{step['last_kind']} failed")
    if step.get("last_outcome") == "pending" or step.get("planned_pending"):
        return "pending", str(step.get("pending_reason") or "created, waiting for resources")
    if step.get("last_kind"):
        return "not-live", f"no live instance; last step {step['last_kind']} {step['last_outcome']}"
    return "not-live", "no live instance"


def _agent_view(
    row: Mapping[str, Any], facts: RuntimeFacts | None, default_namespace: str
) -> AgentView:
    outcome = agent_spec_from_row(row)
    raw_id = row.get("agent_id")
    if isinstance(outcome, AgentSpec):
        spec, problems = outcome.model_dump(mode="json"), []
        agent_id, organ_id = outcome.agent_id, outcome.organ_id
        namespace = outcome.namespace or default_namespace
    else:
        spec = {k: v for k, v in row.items()}
        problems = [f"{p.field}: {p.reason}" for p in outcome]
        agent_id = str(raw_id) if raw_id is not None else f"(no id: {row.get('name') or '?'})"
        organ_id = (row.get("organ_ids") or [NO_ORGAN])[0]
        namespace = str(row.get("namespace") or default_namespace)
    state, detail = classify(agent_id, namespace, problems, facts)
    view = AgentView(
        agent_id=agent_id,
        organ_id=organ_id,
        namespace=namespace,
        state=state,
        detail=detail,
        name=row.get("name"),
        skills=[str(s) for s in row.get("skills") or []],
        models=[str(m) for m in row.get("models") or []],
        services=[str(s) for s in row.get("services") or []],
        policies=[str(p) for p in row.get("policies") or []],
        spec=spec,
        problems=problems,
    )
    if facts is not None:
        view.instance = facts.live.get(agent_id) or facts.starting.get(agent_id)
        view.last_step = facts.audit.get((namespace, agent_id))
    return view


def read_fleet(
    graph: Any, registry: Any | None, *, namespace: str, now: datetime | None = None
) -> Fleet:
    """The whole picture: the graph must answer; the registry may be down (or None)."""
    rows = graph.agent_spec_rows()
    organs = [o.model_dump() for o in graph.list_organ_specs()]
    policies = [
        {
            "policy_id": str(p["policy_id"]),
            "kind": p.get("kind") or "",
            "description": p.get("description") or "",
            "forbids": [str(f) for f in p.get("forbids") or []],
        }
        for p in graph.run("list_policies")
        if p.get("policy_id") is not None
    ]
    facts: RuntimeFacts | None = None
    registry_state = "not configured (no SEEDCORE_PG_DSN, no embedded stack)"
    if registry is not None:
        try:
            facts = read_runtime(registry)
            registry_state = "reachable"
        except RegistryUnavailable as exc:
            registry_state = f"down ({exc})"
            log.warning("registry unavailable, drawing the graph alone: %s", exc)
    agents = [_agent_view(row, facts, namespace) for row in rows]
    known = {o["organ_id"] for o in organs}
    organs += [
        {"organ_id": o, "provides_skills": [], "uses_services": [], "governed_by_policies": []}
        for o in sorted({a.organ_id for a in agents} - known)
    ]
    desired = {a.agent_id for a in agents}
    unmanaged = sorted(set(facts.live) - desired) if facts is not None else []
    return Fleet(
        generated_at=now or datetime.now(UTC),
        graph_version=graph.version(),
        registry=registry_state,
        organs=organs,
        policies=policies,
        agents=agents,
        unmanaged_live=unmanaged,
    )


# --------------------------------------------------------------------------- layout
def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


#: (x, y, SVG path from the source to that point) where a GOVERNED_BY edge heads for its policy
Anchor = tuple[float, float, str]


def layout(fleet: Fleet) -> dict[str, Any]:
    """Coordinates for the SVG: policies in a row on top, one column per organ below."""
    by_organ: dict[str, list[AgentView]] = {o["organ_id"]: [] for o in fleet.organs}
    for agent in fleet.agents:
        by_organ[agent.organ_id].append(agent)
    top = PAD + (POLICY_ROW if fleet.policies else 0)
    # Where a GOVERNED_BY edge leaves its source: the path up to a point above the columns.
    columns: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    anchors: dict[tuple[str, str], Anchor] = {}
    for i, organ in enumerate(fleet.organs):
        x = PAD + i * (COL_W + COL_GAP)
        members = by_organ[organ["organ_id"]]
        height = HEADER_H + 16 + len(members) * (NODE_H + NODE_GAP) + 4
        columns.append(
            {
                "organ_id": organ["organ_id"],
                "x": x,
                "y": top,
                "w": COL_W,
                "h": height,
                "provides": _clip(", ".join(organ["provides_skills"]) or "-", 40),
                "policies": organ["governed_by_policies"],
                "count": len(members),
            }
        )
        anchors[("organ", organ["organ_id"])] = (x + COL_W / 2, top, f"M{x + COL_W / 2} {top}")
        for j, agent in enumerate(members):
            nx, ny = x + COL_W - NODE_W - 10, top + HEADER_H + 16 + j * (NODE_H + NODE_GAP)
            nodes.append(
                {
                    "agent": agent,
                    "x": nx,
                    "y": ny,
                    "colour": STATES[agent.state][1],
                    "fill": STATES[agent.state][2],
                    "title": _clip(agent.agent_id, 30),
                    "skills": _clip("skills: " + (", ".join(agent.skills) or "-"), 40),
                    "models": _clip("models: " + (", ".join(agent.models) or "-"), 40),
                    # MEMBER_OF: from the agent's left edge to the organ's bus line.
                    "member_path": f"M{nx} {ny + NODE_H / 2} H{x + BUS} V{top + HEADER_H}",
                }
            )
            # An agent's own policy edge runs right, then up the gap beside its column.
            gap_x, above = x + COL_W + COL_GAP / 2, top - 14
            exit_path = f"M{nx + NODE_W} {ny + NODE_H / 2} H{gap_x} V{above}"
            anchors[("agent", agent.agent_id)] = (gap_x, above, exit_path)
    width = max(
        PAD * 2 + len(columns) * (COL_W + COL_GAP) - COL_GAP,
        PAD * 2 + len(fleet.policies) * (POLICY_W + POLICY_GAP) - POLICY_GAP,
    )
    policy_boxes = _place_policies(fleet, anchors, width)
    edges = _governed_by(fleet, anchors, policy_boxes)
    height = max([top + c["h"] for c in columns] or [top]) + PAD
    return {
        "width": width,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
        "columns": columns,
        "nodes": nodes,
        "policies": policy_boxes,
        "governed": edges,
    }


def _governs(fleet: Fleet) -> list[tuple[tuple[str, str], str]]:
    """Every GOVERNED_BY edge as ((kind, id), policy id)."""
    edges = [(("organ", o["organ_id"]), p) for o in fleet.organs for p in o["governed_by_policies"]]
    return edges + [(("agent", a.agent_id), p) for a in fleet.agents for p in a.policies]


def _place_policies(
    fleet: Fleet, anchors: Mapping[tuple[str, str], Anchor], width: float
) -> list[dict[str, Any]]:
    """A row of policy boxes, each as near as it can be to the middle of what it governs."""
    governs = _governs(fleet)

    def target(policy_id: str) -> float:
        xs = [anchors[src][0] for src, p in governs if p == policy_id and src in anchors]
        return sum(xs) / len(xs) if xs else width

    ordered = sorted(fleet.policies, key=lambda p: (target(p["policy_id"]), p["policy_id"]))
    row = len(ordered) * (POLICY_W + POLICY_GAP) - POLICY_GAP
    x0 = max(PAD, (width - row) / 2)
    return [
        {
            **p,
            "x": x0 + k * (POLICY_W + POLICY_GAP),
            "y": PAD,
            "w": POLICY_W,
            "h": POLICY_H,
            "forbids_text": _clip("forbids: " + (", ".join(p["forbids"]) or "nothing"), 40),
            "kind_text": _clip(p["kind"], 36),
        }
        for k, p in enumerate(ordered)
    ]


def _governed_by(
    fleet: Fleet,
    anchors: Mapping[tuple[str, str], Anchor],
    boxes: Iterable[Mapping[str, Any]],
) -> list[dict[str, str]]:
    """GOVERNED_BY edges: from the anchor above the source, a cubic curve to the policy."""
    bottom = {b["policy_id"]: (b["x"] + b["w"] / 2, b["y"] + b["h"]) for b in boxes}
    out = []
    for src, policy_id in _governs(fleet):
        if src not in anchors or policy_id not in bottom:
            continue
        (sx, sy, start), (px, py) = anchors[src], bottom[policy_id]
        bend = (sy - py) / 2
        out.append(
            {
                "kind": src[0],
                "source": src[1],
                "policy": policy_id,
                "d": f"{start} C{sx} {sy - bend} {px} {py + bend} {px} {py}",
            }
        )
    return out


# --------------------------------------------------------------------------- rendering
def dot_quote(value: Any) -> str:
    """A DOT double-quoted string: backslash, quote and newline escaped."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("seedcore_thin.cli", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["dotq"] = dot_quote
    return env


def page_data(fleet: Fleet) -> dict[str, Any]:
    """The JSON embedded in the page: one panel per agent, keyed by id."""
    organ_policies = {o["organ_id"]: o["governed_by_policies"] for o in fleet.organs}
    return {
        "generated_at": fleet.generated_at.isoformat(),
        "agents": {a.agent_id: a.panel(organ_policies.get(a.organ_id, [])) for a in fleet.agents},
    }


def render_html(fleet: Fleet) -> str:
    """One self-contained page: no request leaves it (no CDN, no font, no image)."""
    data = json.loads(json.dumps(page_data(fleet), default=str))
    return (
        _environment()
        .get_template("fleet.html.j2")
        .render(fleet=fleet, states=STATES, counts=fleet.counts(), draw=layout(fleet), data=data)
    )


def render_dot(fleet: Fleet) -> str:
    """The same picture as Graphviz DOT: organs as clusters, policies as notes."""
    by_organ: dict[str, list[AgentView]] = {o["organ_id"]: [] for o in fleet.organs}
    for agent in fleet.agents:
        by_organ[agent.organ_id].append(agent)
    return (
        _environment()
        .get_template("fleet.dot.j2")
        .render(fleet=fleet, states=STATES, by_organ=by_organ)
    )


# --------------------------------------------------------------------------- command
def write_outputs(fleet: Fleet, html: str | None, dot: str | None) -> list[Path]:
    """Write the requested files ('-' is standard output); returns the paths written."""
    written: list[Path] = []
    for target, render in ((html, render_html), (dot, render_dot)):
        if target is None:
            continue
        text = render(fleet)
        if target == "-":
            sys.stdout.write(text)
            continue
        path = Path(target).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_page(graph: Any, registry: Any | None, path: Path, *, namespace: str) -> Fleet:
    """Read the fleet and write its page to ``path`` (what ``make demo`` calls)."""
    fleet = read_fleet(graph, registry, namespace=namespace)
    write_outputs(fleet, str(path), None)
    return fleet


def summary(fleet: Fleet) -> str:
    counts = ", ".join(f"{n} {STATES[s][0]}" for s, n in fleet.counts().items() if n)
    return f"{len(fleet.agents)} agents in {len(fleet.organs)} organs ({counts or 'none'})"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fleet.py", description=__doc__.splitlines()[0])
    p.add_argument("--html", metavar="PATH", help="write the page here (default: fleet.html)")
    p.add_argument("--dot", metavar="PATH", help="write Graphviz DOT here ('-': stdout)")
    p.add_argument("--graph-uri", help="default: SEEDCORE_GRAPH_URI")
    p.add_argument("--pg-dsn", help="default: SEEDCORE_PG_DSN, else the embedded stack")
    p.add_argument("--namespace", help="Ray namespace of agents that name none")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.html is None and args.dot is None:
        args.html = "fleet.html"
    try:
        return _run(args)
    except (SeedcoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from seedcore_thin.graph import connect_graph
    from seedcore_thin.registry import Registry

    settings = Settings.from_env()
    dsn = args.pg_dsn or resolve_dsn(state_dir())
    graph = connect_graph(args.graph_uri or settings.graph_uri)
    registry = Registry(dsn) if dsn else None
    try:
        fleet = read_fleet(graph, registry, namespace=args.namespace or settings.namespace)
    finally:
        if registry is not None:
            registry.close()
        graph.close()
    out = sys.stderr if "-" in (args.html, args.dot) else sys.stdout
    for path in write_outputs(fleet, args.html, args.dot):
        print(f"wrote {path}", file=out)
    print(f"fleet: {summary(fleet)}; registry {fleet.registry}", file=out)
    return 0
