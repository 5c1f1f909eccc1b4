"""The watch loop of Tier0Manager on real Ray and PostgreSQL."""

from __future__ import annotations

import statistics
import time

import pytest
import ray

from seedcore_thin import actors
from seedcore_thin.config import Settings
from seedcore_thin.graph import upsert_agent
from seedcore_thin.manager import Tier0Manager, get_tier0_manager
from seedcore_thin.specs import AgentSpec
from tests.fixtures_graph import MockGraph
from tests.fixtures_pg import admin_registry, seed_finished_runs
from tests.fixtures_ray import wait_until

pytestmark = pytest.mark.ray

INTERVAL = 5.0


def spec(agent_id: str) -> AgentSpec:
    return AgentSpec(agent_id=agent_id, organ_id="watch", resources={"num_cpus": 0.1})


def instances(ns: str) -> dict[str, str]:
    return {
        f.name: str(f.info["instance_id"])
        for f in actors.describe_all(actors.named_actors([ns]), timeout_s=5)
        if f.info is not None
    }


def test_watch_recreates_killed_agent_follows_graph_and_stops(
    pg_dsn: str, ray_namespace: str, mock_graph: MockGraph
) -> None:
    ns = ray_namespace
    graph = mock_graph([spec("w1"), spec("w2")])
    manager = Tier0Manager(
        Settings(pg_dsn=pg_dsn, namespace=ns, beat_sec=1.0), graph=graph, namespace=ns
    )
    old_runs = seed_finished_runs(pg_dsn, 2, days_ago=45)
    prunes: list[int] = []  # how many passes were done at each audit prune
    prune = manager.prune_audit

    def counted_prune() -> int:
        prunes.append(manager.passes)
        return prune()

    manager.prune_audit = counted_prune  # type: ignore[method-assign]
    try:
        manager.start_graph_reconciler(interval=INTERVAL)
        loop = manager._thread
        manager.start_graph_reconciler(interval=INTERVAL)  # idempotent: still one loop
        assert manager._thread is loop and manager.watching
        wait_until(lambda: set(instances(ns)) == {"w1", "w2"}, 60, "first pass")
        before = instances(ns)

        def old_runs_pruned() -> bool:
            with admin_registry(pg_dsn) as reg:
                kept = {r["run_id"] for r in reg.call("reconcile_runs_recent", limit=50)}
            return kept.isdisjoint(old_runs)

        wait_until(old_runs_pruned, 10, "the audit prune after the first pass")

        # the change check costs a few milliseconds (graph version, live set, names)
        costs = []
        for _ in range(20):
            start = time.perf_counter()
            manager.change_token()
            costs.append((time.perf_counter() - start) * 1000)
        assert statistics.median(costs) < 50, costs

        ray.kill(ray.get_actor("w1", namespace=ns))  # by hand
        took = wait_until(
            lambda: instances(ns).get("w1") not in (None, before["w1"]), INTERVAL, "recreation"
        )
        assert took < INTERVAL
        assert instances(ns)["w2"] == before["w2"]  # the healthy one untouched

        upsert_agent(graph, spec("w3"))  # a graph change is noticed by the cheap check
        wait_until(lambda: "w3" in instances(ns), INTERVAL, "new agent from the graph")

        manager.stop_graph_reconciler()
        manager.stop_graph_reconciler()  # idempotent
        assert not manager.watching
        passes = manager.passes
        ray.kill(ray.get_actor("w2", namespace=ns))
        time.sleep(2.5)
        assert "w2" not in instances(ns) and manager.passes == passes  # really stopped
        assert manager.last_error is None
        assert prunes == [1], "once, after the first pass, then not again within 10 minutes"
    finally:
        manager.close()


def test_get_tier0_manager_is_one_per_process() -> None:
    first = get_tier0_manager()
    assert get_tier0_manager() is first
    assert not first.watching
