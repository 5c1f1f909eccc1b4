"""The demo behind ``make demo``: every moving part, once, on the embedded stack.

It is deliberately a straight line of steps a newcomer can read top to bottom; each step
calls the same functions the CLI and the tests use.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seedcore_thin.config import Settings, default_graph_uri, state_dir
from seedcore_thin.errors import ConfigError, NoQualifiedAgent, SeedcoreError

SAMPLE_TASKS: list[tuple[str, dict[str, Any]]] = [
    (
        "Which topic is this sentence about? (embedder-1 runs a real model, all-MiniLM-L6-v2)",
        {
            "task_type": "similar",
            "required_skills": ["similar"],
            "data": {"text": "Reconcile the ledger before the quarterly audit", "top": 2},
        },
    ),
    (
        "Detect objects in a camera frame (vision organ, YOLO)",
        {
            "task_type": "image_analysis",
            "required_skills": ["object_detection"],
            "required_models": ["yolov8n"],
            "organ_id": "vision",
            "data": {"image_path": "/data/frames/0001.jpg"},
        },
    ),
    (
        "Summarize a filing, fetching sources from the internet",
        {
            "task_type": "summarize",
            "required_skills": ["summarization"],
            "requires_external_network": True,
            "data": {"url": "https://example.org/filing.pdf"},
        },
    ),
    (
        "Summarize ledger anomalies inside the finance organ, with internet access",
        {
            "task_type": "summarize",
            "required_skills": ["summarization"],
            "organ_id": "finance",
            "requires_external_network": True,
            "data": {"ledger": "2026-Q3"},
        },
    ),
    (
        "Segment an image on a GPU (this machine has none: the GPU agent is pending)",
        {
            "task_type": "segmentation",
            "required_skills": ["segmentation"],
            "min_gpus": 1,
            "data": {"image_path": "/data/frames/0002.jpg"},
        },
    ),
    (
        "Triage a support ticket (a pooled agent: four support agents share one host actor)",
        {
            "task_type": "triage",
            "required_skills": ["ticket_triage"],
            "organ_id": "support",
            "data": {"ticket": "My invoice shows the wrong VAT number."},
        },
    ),
    (
        "Transcribe speech (no agent has the skill)",
        {"task_type": "transcribe", "required_skills": ["speech_to_text"], "data": {}},
    ),
]

FENCE = "-" * 78


def _step(number: int, title: str) -> None:
    print(f"\n{number}. {title}\n{FENCE}")


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print("  " + line.format(*headers))
    print("  " + line.format(*("-" * w for w in widths)))
    for row in rows:
        print("  " + line.format(*row))


def bring_up_stack() -> None:
    """Start (or find) PostgreSQL, FalkorDB and Ray, and say where each is."""
    from seedcore_thin.cli.stack import COMPONENTS

    home = state_dir()
    for component in COMPONENTS:
        print(f"  {component.name:<9} {component.up(home)}")


def migrate(pg_dsn: str, graph: Any) -> None:
    from seedcore_thin.graph.migrations import migrate_graph
    from seedcore_thin.migrations import migrate_postgres

    for target, applied in (
        ("postgres", migrate_postgres(pg_dsn)),
        ("graph", migrate_graph(graph)),
    ):
        said = f"applied {', '.join(applied)}" if applied else "up to date"
        print(f"  {target:<9} {said}")


def load_fleet(graph: Any) -> None:
    from seedcore_thin.graph import load_fixture

    load_fixture(graph, "example_fleet")
    specs = graph.read_agent_specs()
    organs = graph.list_organ_specs()
    print(
        f"  example fleet: {len(specs.valid)} agents in {len(organs)} organs, "
        f"desired-state version {graph.version()}"
    )
    for bad in specs.invalid:
        print(f"  invalid spec skipped: {bad.agent_id} {bad.field}: {bad.reason}")


def reconcile(manager: Any) -> Any:
    from seedcore_thin.cli.reconcile import print_plan, print_report

    report = manager.reconcile_from_graph()
    print("  the plan:")
    print_plan(report.plan, sys.stdout)
    print("  what apply did:")
    print_report(report, sys.stdout)
    if report.plan.pending:
        print(
            "  note: pending agents wait for resources this cluster does not have; "
            "on this machine there is no GPU, so the GPU agent stays pending (no GPU is faked)."
        )
    return report


def wait_for_fleet(registry: Any, expected: int, timeout_s: float) -> list[Any]:
    """Poll ``active_instance`` until every placed agent has beaten once (or time is up)."""
    deadline = time.monotonic() + timeout_s
    rows = registry.active_instances()
    while len(rows) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = registry.active_instances()
    return list(rows)


def print_fleet(rows: Sequence[Any]) -> None:
    """One line per live agent; pooled agents show the host actor (and pid) they share."""
    table = [
        (
            r.logical_id,
            str(r.instance_id)[:8],
            r.namespace or "",
            "own actor" if r.actor_name in (None, r.logical_id) else r.actor_name,
            f"{r.ip_address or ''}:{r.pid or ''}",
            r.last_heartbeat.strftime("%H:%M:%S"),
        )
        for r in rows
    ]
    _table(table, ("agent", "instance", "namespace", "lives in", "ip:pid", "last beat"))
    pooled = [r for r in rows if r.actor_name not in (None, r.logical_id)]
    if pooled:
        hosts = len({r.actor_name for r in pooled})
        print(f"  {len(pooled)} pooled agent(s) share {hosts} host actor(s): one process each")


def print_code(namespace: str) -> None:
    """What each agent runs (its entrypoint, or the built-in echo agent) and its setup time."""
    from seedcore_thin import actors

    found = actors.describe_all(actors.named_actors([namespace]), timeout_s=5)
    agents = [a for f in found if f.info is not None for a in actors.agents_of(f.info)]
    table = [
        (
            str(a["agent_id"]),
            str(a.get("entrypoint")),
            str(a.get("state")),
            f"{a['setup_s']:.2f} s" if a.get("setup_s") is not None else "",
        )
        for a in sorted(agents, key=lambda a: str(a["agent_id"]))
    ]
    _table(table, ("agent", "runs", "state", "setup took"))


def _print_refusals(reasons: Mapping[str, Sequence[str]], limit: int = 12) -> None:
    refused = [(agent, why) for agent, why in sorted(reasons.items()) if why]
    for agent, why in refused[:limit]:
        print(f"      x {agent:<20} {'; '.join(why)}")
    if len(refused) > limit:
        print(f"      ... and {len(refused) - limit} more")


def route_samples(manager: Any) -> None:
    for title, task in SAMPLE_TASKS:
        print(f"\n  > {title}")
        try:
            routed = manager.execute_task_on_graph_best(task)
        except NoQualifiedAgent as refusal:
            print("    no qualified live agent; the closest agents' reasons:")
            _print_refusals(refusal.reasons)
            for reason, agents in refusal.summary.items():
                print(f"      {agents:,} other agent(s): {reason}")
            continue
        decision = routed.decision
        print(f"    -> {decision.agent_id}  ({decision.latency_ms:.1f} ms to decide)")
        print(f"       why: {decision.why}")
        print(f"       result: {routed.result}")
        refusals = manager.explain_task(task)
        if any(refusals.values()):
            print("    refused:")
            _print_refusals(refusals, limit=4)


def draw_fleet(graph: Any, pg_dsn: str, namespace: str) -> Path:
    """Write the picture of the fleet (``scripts/fleet.py``) next to the stack's data."""
    from seedcore_thin.cli.fleet import summary, write_page
    from seedcore_thin.registry import Registry

    path = state_dir().resolve() / "fleet.html"
    with Registry(pg_dsn) as registry:
        fleet = write_page(graph, registry, path, namespace=namespace)
    print(f"  {summary(fleet)}")
    print(f"  open {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    from seedcore_thin.actors import connect
    from seedcore_thin.graph import connect_graph
    from seedcore_thin.local.postgres import log_path, resolve_dsn
    from seedcore_thin.manager import Tier0Manager
    from seedcore_thin.registry import Registry

    print("seedcore_thin demo: desired state in a graph, liveness in PostgreSQL, agents on Ray")
    try:
        _step(1, "The embedded stack (loopback only, no Docker)")
        bring_up_stack()
        pg_dsn = resolve_dsn(state_dir())
        if pg_dsn is None:
            raise ConfigError(f"PostgreSQL did not come up; see {log_path(state_dir())}")
        settings = Settings.from_env()
        graph = connect_graph(default_graph_uri())

        _step(2, "Migrations (SQL and Cypher, checksum-guarded)")
        migrate(pg_dsn, graph)

        _step(3, "Desired state: the example fleet in the graph")
        load_fleet(graph)

        _step(4, "Reconcile: plan first, then apply onto Ray")
        connect(settings, start=True)
        manager = Tier0Manager(settings, graph=graph, pg_dsn=pg_dsn)
        report = reconcile(manager)

        _step(5, "The fleet, as seedcore.active_instance sees it")
        started = [o for o in report.outcomes if o.outcome == "succeeded"]
        placed = len(report.plan.in_sync) + sum(o.action.kind != "remove" for o in started)
        with Registry(pg_dsn) as registry:
            rows = wait_for_fleet(registry, placed, timeout_s=3 * settings.beat_sec + 5)
        print_fleet(rows)
        print("  what each agent runs (agents without an entrypoint run the built-in echo agent):")
        print_code(settings.namespace)

        _step(6, "Routing sample tasks to the best qualified live agent")
        route_samples(manager)

        _step(7, "A picture of the fleet: one page that opens offline")
        draw_fleet(graph, pg_dsn, settings.namespace)
        manager.close()
    except SeedcoreError as exc:
        print(f"\ndemo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    print(f"\n{FENCE}\nThe stack is still up (data in {state_dir()}).")
    print("  .venv/bin/python scripts/reconcile.py plan   # the fleet is in sync: exit 0")
    print("  .venv/bin/python scripts/fleet.py --html fleet.html  # draw the fleet again")
    print("  psql \"$SEEDCORE_PG_DSN\" -c 'TABLE seedcore.active_instance'")
    print("  make down                                     # stop PostgreSQL, FalkorDB, Ray")
    return 0
