"""``scripts/reconcile.py plan|apply|watch``: make Ray's actors match the graph.

Exit codes: 0 in sync (plan) or applied (apply), 2 the plan has changes (plan only), 1 an
error (graph unreachable, lock held, a step failed). ``plan --json`` prints one JSON object
with the keys create, replace, remove, archive, in_sync, held_back, invalid (and pending).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from seedcore_thin.config import Settings, state_dir
from seedcore_thin.errors import SeedcoreError
from seedcore_thin.planner import Plan
from seedcore_thin.reconciler import ApplyReport, Outcome

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
BAR_WIDTH = 30

_SIGNS = {"create": "+", "replace": "~", "remove": "-", "archive": "!"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reconcile.py", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["plan", "apply", "watch"])
    p.add_argument("--strict", action="store_true", help="archive unmanaged actors too")
    p.add_argument("--json", action="store_true", help="machine-readable output, no progress")
    p.add_argument("--namespace", help="only this Ray namespace")
    p.add_argument("--graph-uri", help="default: SEEDCORE_GRAPH_URI")
    p.add_argument("--pg-dsn", help="default: SEEDCORE_PG_DSN, else the embedded stack")
    p.add_argument("--allow-mass-removal", action="store_true")
    p.add_argument("--interval", type=float, default=15.0, help="watch: full resync period")
    p.add_argument("--metrics-port", type=int, help="watch: serve Prometheus metrics on PORT")
    p.add_argument("--metrics-host", default="127.0.0.1", help="watch: metrics bind address")
    return p


def _home(agent_id: str, home: str | None, *, going: bool = False) -> str:
    """Where a pooled agent goes (its pool) or lives (its host); "" for its own actor."""
    if home is None or home == agent_id:
        return ""
    return f"  -> pool {home}" if going else f"  in host {home}"


def print_plan(plan: Plan, out: TextIO) -> None:
    """A human-readable plan: one line per step (where pooled agents go or live), the pool
    hosts of the agents in sync, then what is held back or invalid."""
    for action in plan.actions:
        print(
            f"  {_SIGNS[action.kind]} {action.kind:<8} {action.namespace}/{action.agent_id}"
            f"  ({action.reason})"
            f"{_home(action.agent_id, action.home, going=action.kind in ('create', 'replace'))}",
            file=out,
        )
    for entry in plan.pending:
        where = _home(entry.agent_id, entry.home)
        print(f"  ? pending  {entry.namespace}/{entry.agent_id}  ({entry.reason}){where}", file=out)
    hosts = Counter(
        f"{e.namespace}/{e.home}" for e in plan.in_sync if e.home and e.home != e.agent_id
    )
    for host, count in sorted(hosts.items()):
        print(f"  = in sync  {count} pooled agent(s) in host {host}", file=out)
    for held in plan.held_back:
        a = held.action
        print(
            f"  # held     {a.kind} {a.namespace}/{a.agent_id}  [{held.rule}] {held.reason}",
            file=out,
        )
    for bad in plan.invalid:
        print(f"  x invalid  {bad.agent_id or '<no id>'}  {bad.field}: {bad.reason}", file=out)
    counts = ", ".join(f"{k} {v}" for k, v in plan.summary().items() if v) or "no agents"
    verdict = "changes" if plan.has_changes else "nothing to do"
    print(f"plan: {verdict} ({counts})", file=out)


class ProgressBar:
    """``[#####.....] 5/10 create a1 succeeded`` redrawn in place on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, done: int, total: int, outcome: Outcome) -> None:
        filled = BAR_WIDTH * done // max(total, 1)
        line = (
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} "
            f"{outcome.action.kind} {outcome.action.agent_id} {outcome.outcome}"
        )
        self.out.write(f"{line:<100}")
        if done == total:
            self.out.write("\n")
        self.out.flush()


def print_report(report: ApplyReport, out: TextIO) -> None:
    for o in report.outcomes:
        extra = o.error or o.detail.get("pending_reason") or ""
        print(f"  {o.outcome:<9} {o.action.kind} {o.action.namespace}/{o.action.agent_id}"
              f"  {extra}".rstrip(), file=out)  # fmt: skip
    for warning in report.warnings:
        print(f"  warning: {warning}", file=out)
    run = f" (audit run {report.run_id})" if report.run_id is not None else ""
    print(f"apply: {report.status}{run}", file=out)


def _emit(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, sort_keys=True, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except SeedcoreError as exc:
        if args.json:
            _emit({"error": type(exc).__name__, "message": str(exc)})
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    from seedcore_thin.actors import connect
    from seedcore_thin.graph import connect_graph
    from seedcore_thin.local import pg_dsn as resolve_dsn
    from seedcore_thin.manager import Tier0Manager

    settings = Settings.from_env()
    strict = args.strict or settings.strict_reconcile
    connect(settings, start=args.command != "plan")
    graph = connect_graph(args.graph_uri or settings.graph_uri)
    manager = Tier0Manager(
        settings,
        graph=graph,
        namespace=args.namespace,
        strict=strict,
        allow_mass_removal=args.allow_mass_removal,
        pg_dsn=args.pg_dsn or resolve_dsn(state_dir()),
    )
    try:
        if args.command == "plan":
            return _plan(manager, args.json)
        if args.command == "apply":
            return _apply(manager, args.json)
        if args.metrics_port is not None:
            port = manager.start_metrics_server(args.metrics_port, args.metrics_host)
            print(f"metrics at http://{args.metrics_host}:{port}/metrics", file=sys.stderr)
        return _watch(manager, args.interval)
    finally:
        manager.close()
        graph.close()


def _plan(manager: Any, as_json: bool) -> int:
    plan: Plan = manager.plan()
    if as_json:
        _emit(plan.to_json())
    else:
        print_plan(plan, sys.stdout)
    if not plan.graph_reachable:
        if not as_json:
            print("error: the graph is unreachable; nothing would be removed", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_CHANGES if plan.has_changes else EXIT_OK


def _apply(manager: Any, as_json: bool) -> int:
    progress = ProgressBar(sys.stderr) if not as_json and sys.stderr.isatty() else None
    report: ApplyReport = manager.reconcile_from_graph(progress=progress)
    if as_json:
        _emit(report.to_json())
    else:
        print_plan(report.plan, sys.stdout)
        print_report(report, sys.stdout)
    if not report.plan.graph_reachable:
        if not as_json:
            print("error: the graph is unreachable; nothing was removed", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if report.ok else EXIT_ERROR


def _watch(manager: Any, interval: float) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("seedcore_thin").setLevel(logging.INFO)
    print(f"watching (full resync every {interval:g} s); Ctrl-C stops", file=sys.stderr)
    manager.start_graph_reconciler(interval=interval)
    stop.wait()
    manager.stop_graph_reconciler()
    return EXIT_OK
