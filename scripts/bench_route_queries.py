"""Time the routing queries alone (no Router) at 10,000 and 100,000 agents on embedded FalkorDB.

``bench_route_queries.py --json [--sizes 10k,100k]`` loads generated fleets (timing the load),
then, over the task mix of ``bench_routing.py``, times each named query through the graph
client and splits its cost: ``*_server_*`` is FalkorDB's own execution time (the reply's
``run_time_ms``), ``*_client_*`` the whole ``GraphClient.run`` call (transfer and value
parsing included). It prints one JSON object with, per size label:

- ``load_fleet_s_*``: generating and loading the fleet;
- ``page_{client,server}_{p50,p99}_ms_*``: ``route_candidates`` with ``$limit`` 32, the
  first page an uncached decision reads (besides the version check and the live
  intersection);
- ``candidates_{client,server}_{p50,p99}_ms_*``: ``route_candidates`` for the whole list
  (what the router reads in the background when a shape comes again), and
  ``candidates_max_*`` the largest candidate list of the mix;
- ``near_{client,server}_{p50,p99}_ms_*``: ``route_explain_near`` with ``$limit`` 50 (the
  refusal's query: closest agents plus a summary of the rest);
- ``explain_full_ms_*``: the whole-fleet ``route_explain`` for one task (today's refusal);
- ``version_p50_ms_*``: ``desired_state_version``.

These are phase-A figures for issue 11: ``bench_routing.py`` times the Router itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_routing import N_SHAPES, _percentile, task_mix
from benchkit import emit, median_ms

from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.falkordb import start_falkordb, stop_falkordb
from seedcore_thin.local.fleetgen import generate_fleet, load_fleet
from seedcore_thin.queries import cypher
from seedcore_thin.router import EVERY_CANDIDATE, FIRST_PAGE
from seedcore_thin.tasks import TaskRequest

SIZES = {"10k": 10_000, "100k": 100_000}
NEAR_LIMIT = 50


def _split(
    client: FalkorDBGraphClient, name: str, params: dict[str, Any]
) -> tuple[float, float, list[dict[str, Any]]]:
    """(client ms, server ms, rows) of one named query; the server figure from a second run."""
    start = time.perf_counter()
    rows = client.run(name, **params)
    client_ms = (time.perf_counter() - start) * 1000
    server_ms = float(client._graph.ro_query(cypher(name), params).run_time_ms)
    return client_ms, server_ms, rows


def _stats(prefix: str, label: str, client: list[float], server: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_client_p50_ms_{label}": round(statistics.median(client), 2),
        f"{prefix}_client_p99_ms_{label}": round(_percentile(client, 0.99), 2),
        f"{prefix}_server_p50_ms_{label}": round(statistics.median(server), 2),
        f"{prefix}_server_p99_ms_{label}": round(_percentile(server, 0.99), 2),
    }


def bench_size(server_uri: str, label: str, n_agents: int) -> dict[str, Any]:
    client = FalkorDBGraphClient(f"{server_uri}/bench_rq_{label}_{uuid.uuid4().hex[:8]}")
    try:
        migrate_graph(client)
        start = time.perf_counter()
        fleet = generate_fleet(n_agents, seed=42)
        load_fleet(client, fleet)
        load_s = time.perf_counter() - start
        tasks = task_mix(fleet, N_SHAPES, seed=11)
        extra = [TaskRequest.parse({"task_type": "gpus", "min_gpus": 2.0})]
        out: dict[str, Any] = {f"load_fleet_s_{label}": round(load_s, 1)}
        for prefix, limit in (("page", FIRST_PAGE), ("candidates", EVERY_CANDIDATE)):
            for task in tasks:  # warm the plan cache
                client.run("route_candidates", **task.route_params(), limit=limit)
            client_ms, server_ms, sizes = [], [], []
            for task in tasks:
                params = {**task.route_params(), "limit": limit}
                c, s, rows = _split(client, "route_candidates", params)
                client_ms.append(c)
                server_ms.append(s)
                sizes.append(len(rows))
            out.update(_stats(prefix, label, client_ms, server_ms))
        out[f"candidates_max_{label}"] = max(sizes)
        near_tasks = tasks[: N_SHAPES // 2] + extra
        client_ms, server_ms = [], []
        for task in near_tasks:
            params = {**task.route_params(), "limit": NEAR_LIMIT}
            client.run("route_explain_near", **params)
            c, s, _ = _split(client, "route_explain_near", params)
            client_ms.append(c)
            server_ms.append(s)
        out.update(_stats("near", label, client_ms, server_ms))
        if n_agents <= 10_000:
            params = tasks[0].route_params()
            out[f"explain_full_ms_{label}"] = round(
                median_ms(lambda: client.run("route_explain", **params), 3), 1
            )
        out[f"version_p50_ms_{label}"] = round(median_ms(client.version, 200), 3)
        return out
    finally:
        client.delete_graph()
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated: 10k, 100k")
    parser.add_argument("--graph-uri", help="falkordb://HOST:PORT (default: a private one)")
    args = parser.parse_args(argv)
    labels = [s for s in args.sizes.split(",") if s]
    result: dict[str, Any] = {"backend": "falkordb", "near_limit": NEAR_LIMIT}
    with tempfile.TemporaryDirectory(prefix="seedcore-bench-") as tmp:
        uri = args.graph_uri.rstrip("/") if args.graph_uri else start_falkordb(Path(tmp))
        try:
            for label in labels:
                result.update(bench_size(uri, label, SIZES[label]))
        finally:
            if not args.graph_uri:
                stop_falkordb(Path(tmp))
    emit(result, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
