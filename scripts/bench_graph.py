"""Benchmark reading the desired state from embedded FalkorDB (1,000 to 100,000 agents).

``bench_graph.py --json`` starts a private embedded FalkorDB in a temporary directory on a
free loopback port (or uses ``--graph-uri falkordb://HOST:PORT`` and throwaway graphs named
``bench_*``), loads generated fleets through the named commands and prints one JSON object:

- ``list_specs_ms_1k`` / ``_10k`` / ``_100k``: ``read_agent_specs()`` end to end (one
  query, its parts merged into a row per agent, rows validated into ``AgentSpec``), median
  of 5 (3 at 100,000); ``..._query_ms_..`` the query and merged rows alone
  (``agent_spec_rows()``), ``..._server_ms_..`` FalkorDB's own execution time (so
  validation = total - query, client parsing and merging = query - server);
- ``naive_list_specs_ms_1k`` / ``..._10k``: the baseline in the same run, one query for the
  ids then one ``agent_spec`` per ``$agent_id`` (the N+1 way), and ``speedup_vs_naive_*``
  (not at 100,000: it would take minutes);
- ``version_ms`` (median) and ``version_p99_ms`` of ``version()``, over 1,000 calls.

Targets: 10,000 specs read in <= 1,000 ms, 100,000 in <= 3,000 ms; the version check <= 5 ms
(on the reference machine; ``$SEEDCORE_MACHINE_FACTOR`` scales them for this one).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any

from benchkit import graph_bench_main, judge, median_ms

from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.fleetgen import generate_fleet, load_fleet
from seedcore_thin.queries import cypher
from seedcore_thin.specs import agent_specs_from_rows

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
NAIVE_UP_TO = 10_000
TARGET_LIST_10K_MS = 1_000.0
TARGET_LIST_100K_MS = 3_000.0
TARGET_VERSION_MS = 5.0


def _naive_read(client: FalkorDBGraphClient) -> int:
    """The N+1 baseline: ids first, then one query per agent, validated the same way."""
    ids = [row["agent_id"] for row in client.run("agent_ids")]
    rows = [row for agent_id in ids for row in client.agent_spec_rows(agent_id)]
    return len(agent_specs_from_rows(rows).valid)


def _server_ms(client: FalkorDBGraphClient) -> float:
    """FalkorDB's own execution time of list_agent_specs (no transfer, no parsing)."""
    result = client._graph.ro_query(cypher("list_agent_specs"))
    return float(result.run_time_ms)


def _bench_size(server_uri: str, label: str, n_agents: int) -> dict[str, Any]:
    client = FalkorDBGraphClient(f"{server_uri}/bench_{label}_{uuid.uuid4().hex[:8]}")
    try:
        migrate_graph(client)
        fleet = generate_fleet(n_agents, seed=42)
        start = time.perf_counter()
        load_fleet(client, fleet)
        load_ms = (time.perf_counter() - start) * 1000
        specs = client.read_agent_specs()
        if len(specs.valid) != n_agents or specs.invalid:
            raise SystemExit(f"bench: read {len(specs.valid)} valid specs of {n_agents}")
        repeat = 5 if n_agents <= NAIVE_UP_TO else 3
        list_ms = median_ms(client.read_agent_specs, repeat)
        query_ms = median_ms(client.agent_spec_rows, repeat)
        out = {
            f"list_specs_ms_{label}": round(list_ms, 1),
            f"list_specs_query_ms_{label}": round(query_ms, 1),
            f"list_specs_server_ms_{label}": round(_server_ms(client), 1),
            f"load_fleet_ms_{label}": round(load_ms, 1),
        }
        if n_agents > NAIVE_UP_TO:
            return out
        start = time.perf_counter()
        if _naive_read(client) != n_agents:
            raise SystemExit("bench: the naive baseline read a different fleet")
        naive_ms = (time.perf_counter() - start) * 1000
        out[f"naive_list_specs_ms_{label}"] = round(naive_ms, 1)
        out[f"speedup_vs_naive_{label}"] = round(naive_ms / list_ms, 1)
        return out
    finally:
        client.delete_graph()
        client.close()


def _bench_version(server_uri: str) -> dict[str, float]:
    client = FalkorDBGraphClient(f"{server_uri}/bench_version_{uuid.uuid4().hex[:8]}")
    try:
        migrate_graph(client)
        load_fleet(client, generate_fleet(1_000, seed=42))
        client.version()
        times = []
        for _ in range(1_000):
            start = time.perf_counter()
            client.version()
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        return {
            "version_ms": round(statistics.median(times), 3),
            "version_p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        }
    finally:
        client.delete_graph()
        client.close()


def run(server_uri: str) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": "falkordb", "agents": list(SIZES.values())}
    for label, n_agents in SIZES.items():
        result.update(_bench_size(server_uri, label, n_agents))
    result.update(_bench_version(server_uri))
    try:
        import hiredis  # noqa: F401

        result["hiredis"] = True
    except ImportError:
        result["hiredis"] = False
    targets = {
        "list_specs_ms_10k": TARGET_LIST_10K_MS,
        "list_specs_ms_100k": TARGET_LIST_100K_MS,
        "version_ms": TARGET_VERSION_MS,
    }
    judge(result, targets)
    return result


def main(argv: list[str] | None = None) -> int:
    return graph_bench_main("bench_graph.py", __doc__.split("\n")[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
