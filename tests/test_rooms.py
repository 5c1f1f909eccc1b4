"""The house's rooms, checked: who may import what (docs/architecture.md, "Rooms").

- Only ``actors`` imports ``ray`` (every Ray call of the runtime is made there).
- The runtime core reaches the local stack only through ``seedcore_thin.local``'s seam
  functions, never its modules; the local stack and the CLI may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "seedcore_thin"
OUTSIDE_CORE = ("cli", "local", "examples")


def _core_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] not in OUTSIDE_CORE
    ]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_only_actors_imports_ray() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in _core_modules()
        if p.name != "actors.py" and any(n == "ray" or n.startswith("ray.") for n in _imports(p))
    ]
    assert offenders == []


def test_the_core_reaches_the_local_stack_only_through_its_seam() -> None:
    rooms = {p.stem for p in (PACKAGE / "local").glob("*.py")} - {"__init__"}
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(
            n
            for n in _imports(p)
            if n.split(".")[:3][-1] in rooms and n.startswith("seedcore_thin.local.")
        )
        for p in _core_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}
