"""``scripts/route.py TASK.json``: route one task to the best qualified live agent, and say why.

Prints the choice (agent, instance, why, decision latency); ``--explain`` adds a table with
every agent of the fleet and the reasons it would not take the task (and how long building it
took: it reads the whole fleet); ``--execute`` also runs the task on the chosen agent through
Ray. A refusal always prints the reasons of the agents that came closest and counts the others
by reason (with ``--explain``, the full table instead). ``TASK.json`` may be ``-`` for stdin.

Exit codes: 0 routed, 4 no qualified live agent, 1 an error (bad task, unreachable graph).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from seedcore_thin.agent import BUILTIN_ECHO
from seedcore_thin.config import Settings, state_dir
from seedcore_thin.errors import InvalidTask, NoQualifiedAgent, SeedcoreError
from seedcore_thin.local import pg_dsn as resolve_dsn
from seedcore_thin.router import Router, RoutingDecision, where
from seedcore_thin.tasks import MAX_TASK_BYTES, TaskRequest, printable

EXIT_ROUTED, EXIT_ERROR, EXIT_NO_AGENT = 0, 1, 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="route.py", description=__doc__.splitlines()[0])
    p.add_argument("task", help="a JSON file holding one task, or - for standard input")
    p.add_argument("--explain", action="store_true", help="also print every agent's reasons")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--execute", action="store_true", help="also run the task on the agent")
    p.add_argument("--graph-uri", help="default: SEEDCORE_GRAPH_URI")
    p.add_argument("--pg-dsn", help="default: SEEDCORE_PG_DSN, else the embedded stack")
    p.add_argument("--namespace", help="Ray namespace of agents that name none")
    return p


def read_task(source: str) -> TaskRequest:
    """The task in a file (or ``-``); InvalidTask names the bad field.

    Read as bytes, at most ``MAX_TASK_BYTES`` and one more (so an oversized file is refused,
    not loaded whole); invalid UTF-8 is the validator's to report, like any bad JSON.
    """
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
        else:
            with open(source, "rb") as file:
                raw = file.read(MAX_TASK_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or exc
        raise InvalidTask("<file>", f"cannot read {printable(source)}: {reason}") from None
    return TaskRequest.parse(raw)


def print_decision(decision: RoutingDecision, out: TextIO) -> None:
    out.write(f"routed task {decision.task_id} -> {decision.agent_id}\n")
    out.write(f"  organ      {decision.organ_id}\n")
    out.write(f"  instance   {decision.instance_id} ({decision.live_source})\n")
    own = decision.actor_name == decision.agent_id
    kind = "its own actor" if own else "a pool host it shares"
    out.write(f"  actor      {decision.namespace}/{decision.actor_name} ({kind})\n")
    out.write(f"  why        {decision.why}\n")
    cached = ", candidates from cache" if decision.cached else ""
    out.write(f"  decided in {decision.latency_ms:.2f} ms{cached}\n")


def print_reasons(
    reasons: Mapping[str, Sequence[str]],
    chosen: str | None,
    out: TextIO,
    runs: Mapping[str, str] | None = None,
    homes: Mapping[str, str] | None = None,
) -> None:
    """One line per agent: qualified ones first (where each lives, when ``homes`` says),
    then the refused with their reasons; with ``runs``, what code each agent runs (its
    entrypoint, or the built-in echo agent)."""
    runs, homes = runs or {}, homes or {}
    width = max([len("AGENT"), *(len(a) for a in reasons)])
    code = max([len("RUNS") * bool(runs), *(len(runs.get(a, "")) for a in reasons)])
    out.write(f"{'AGENT':<{width}}  {'RUNS' if runs else '':<{code}}  VERDICT\n")
    ordered = sorted(reasons, key=lambda a: (bool(reasons[a]), a))
    for agent_id in ordered:
        why = reasons[agent_id]
        if not why:
            verdict = "qualified, live" + (" (chosen)" if agent_id == chosen else "")
            if agent_id in homes:
                verdict += f", {where(agent_id, homes[agent_id])}"
        else:
            verdict = "; ".join(why)
        out.write(f"{agent_id:<{width}}  {runs.get(agent_id, ''):<{code}}  {verdict}\n")


def print_summary(summary: Mapping[str, int], out: TextIO) -> None:
    """The agents a refusal did not explain one by one, counted by reason."""
    for reason, agents in summary.items():
        out.write(f"{agents:>9,} agent(s): {reason}\n")


def implementations(graph: Any) -> dict[str, str]:
    """What each agent of the graph runs: its entrypoint, or the built-in echo agent."""
    return {s.agent_id: s.entrypoint or BUILTIN_ECHO for s in graph.list_agent_specs()}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args, sys.stdout)
    except SeedcoreError as exc:
        if args.json:
            print(json.dumps({"routed": False, "error": type(exc).__name__, "message": str(exc)}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from seedcore_thin.graph import connect_graph
    from seedcore_thin.registry import Registry

    task = read_task(args.task)  # a malformed task fails before anything is contacted
    settings = Settings.from_env()
    namespace = args.namespace or settings.namespace
    dsn = args.pg_dsn or resolve_dsn(state_dir())
    graph = connect_graph(args.graph_uri or settings.graph_uri)
    registry = Registry(dsn) if dsn else None
    try:  # Ray is joined only when needed (--execute, or the registry is down)
        if registry is not None:
            router = Router.from_registry(graph, registry, namespace=namespace)
        else:
            router = Router(graph, None, namespace=namespace)
        return _route(router, task, args, out)
    finally:
        if registry is not None:
            registry.close()
        graph.close()


def _route(router: Router, task: TaskRequest, args: argparse.Namespace, out: TextIO) -> int:
    result: Any = None
    try:
        if args.execute:
            routed = router.execute(task)
            decision, result = routed.decision, routed.result
        else:
            decision = router.route(task)
    except NoQualifiedAgent as refusal:
        full, took_ms = _explained(router, task, args.explain)
        if args.json:
            refused: dict[str, Any] = {"routed": False, "error": "NoQualifiedAgent"}
            refused["reasons"] = full if full is not None else refusal.reasons
            refused["summary"] = {} if full is not None else refusal.summary
            if full is not None:
                refused["explain_ms"] = round(took_ms, 1)
            out.write(json.dumps(refused, indent=2) + "\n")
            return EXIT_NO_AGENT
        out.write(f"no qualified live agent for task {task.task_id} ({task.task_type})\n")
        if full is not None:
            print_reasons(full, None, out)
            out.write(f"(every agent's reasons in {took_ms:.0f} ms)\n")
        else:
            print_reasons(refusal.reasons, None, out)
            print_summary(refusal.summary, out)
        return EXIT_NO_AGENT
    reasons, took_ms = _explained(router, task, args.explain)
    runs = implementations(router.graph) if args.explain else None
    homes = router.homes() if args.explain else {}
    if args.json:
        doc: dict[str, Any] = {"routed": True, "decision": decision.as_dict()}
        if args.execute:
            doc["result"] = result
        if reasons is not None:
            doc["reasons"], doc["runs"], doc["homes"] = reasons, runs, homes
            doc["explain_ms"] = round(took_ms, 1)
        out.write(json.dumps(doc, indent=2, default=str) + "\n")
        return EXIT_ROUTED
    print_decision(decision, out)
    if args.execute:
        out.write(f"  result     {json.dumps(result, default=str)}\n")
    if reasons is not None:
        out.write("\n")
        print_reasons(reasons, decision.agent_id, out, runs, homes)
        out.write(f"(every agent's reasons in {took_ms:.0f} ms)\n")
    return EXIT_ROUTED


def _explained(
    router: Router, task: TaskRequest, wanted: bool
) -> tuple[dict[str, list[str]] | None, float]:
    """Every agent's reasons (``--explain``) and the milliseconds they took, else None."""
    if not wanted:
        return None, 0.0
    start = time.perf_counter()
    reasons = router.explain(task)
    return reasons, (time.perf_counter() - start) * 1000.0
