"""Command-line entry points; each ``scripts/*.py`` is a two-line wrapper around one of these.

``seedcore COMMAND ...`` (installed with the package) dispatches to the same modules, so
``seedcore reconcile plan`` and ``python scripts/reconcile.py plan`` are one program.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "stack": "start, stop or describe the embedded local stack",
    "migrate": "apply pending SQL and Cypher migrations",
    "reconcile": "plan, apply or watch the graph's desired state onto Ray",
    "route": "route one task to the best qualified live agent",
    "fleet": "draw the fleet: one self-contained HTML page (or Graphviz DOT)",
}


def _usage() -> str:
    lines = ["usage: seedcore COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, help_ in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if args else 1
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"seedcore: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 1
    module = importlib.import_module(f"seedcore_thin.cli.{command}")
    return int(module.main(rest))
