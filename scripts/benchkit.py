"""What every ``scripts/bench_*.py`` shares: timing, a private FalkorDB, the output."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seedcore_thin.local.falkordb import PORT_ENV, start_falkordb, stop_falkordb

Result = dict[str, Any]
FACTOR_ENV = "SEEDCORE_MACHINE_FACTOR"


def machine_factor() -> float:
    """This machine's time for the reference machine's second, from ``$SEEDCORE_MACHINE_FACTOR``
    (the issues' timing targets hold on the reference machine; unset: 1.0, no allowance)."""
    return float(os.environ.get(FACTOR_ENV) or 1.0)


def judge(result: Result, targets: dict[str, float]) -> None:
    """Add ``machine_factor``, ``targets``, ``missed`` and ``meets_targets`` to ``result``:
    a timing target is met when the figure is at most the target times the factor."""
    factor = result["machine_factor"] = machine_factor()
    result["targets"] = {key: f"<= {limit:g} (x{factor})" for key, limit in targets.items()}
    result["missed"] = [key for key, limit in targets.items() if result[key] > limit * factor]
    result["meets_targets"] = not result["missed"]


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``fn`` in ms, after one warm-up call (plan caches, connections)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def graph_bench_main(
    prog: str, description: str, run: Callable[[str], Result], argv: list[str] | None
) -> int:
    """``--json`` and ``--graph-uri``; without a URI, a private embedded FalkorDB is used."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--graph-uri",
        help="falkordb://HOST:PORT of a running server (default: a private embedded one)",
    )
    args = parser.parse_args(argv)
    if args.graph_uri:
        result = run(args.graph_uri.rstrip("/"))
    else:
        with tempfile.TemporaryDirectory(prefix="seedcore-bench-") as tmp:
            home = Path(tmp)
            os.environ.pop(PORT_ENV, None)  # a free port, never a configured one
            try:
                result = run(start_falkordb(home))
            finally:
                stop_falkordb(home)
    emit(result, as_json=args.json)
    return 0 if result.get("meets_targets", True) else 1


def emit(result: Result, *, as_json: bool) -> None:
    """One JSON object for machines, aligned ``key value`` lines for people."""
    if as_json:
        print(json.dumps(result, indent=2))
        return
    width = max(len(key) for key in result) + 2
    for key, value in result.items():
        print(f"{key:{width}s} {value}")
