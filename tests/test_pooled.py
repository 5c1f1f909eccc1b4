"""Pooled agents (many to a host actor) beside dedicated ones, on real Ray, FalkorDB and
PostgreSQL: placement, replacement without touching the neighbours, host removal, a killed
host healed, a failing setup isolated, and routing over mixed placements.

Agent classes are in tests/agents_for_tests.py; hosts here take at most 2 agents, so a
pool of 3 needs two hosts.
"""

from __future__ import annotations

import io
import os
import signal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seedcore_thin import actors
from seedcore_thin.cli.reconcile import print_plan
from seedcore_thin.errors import NoQualifiedAgent
from seedcore_thin.graph import remove_agent, upsert_agent
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.planner import POOL_PREFIX
from seedcore_thin.registry import Registry
from seedcore_thin.router import Router
from seedcore_thin.specs import AgentSpec
from tests.fixtures_graph import MockGraph
from tests.fixtures_ray import wait_until

pytestmark = pytest.mark.ray

COUNTER = "tests.agents_for_tests:Counter"


def agent(agent_id: str, placement: str = "pooled", **extra: Any) -> AgentSpec:
    return AgentSpec(
        agent_id=agent_id,
        organ_id=extra.pop("organ_id", "desk"),
        skills=extra.pop("skills", ["count"]),
        resources={"num_cpus": 0.1},
        entrypoint=extra.pop("entrypoint", COUNTER),
        placement=placement,
        max_concurrency=2,
        **extra,
    )


def manager_for(graph: Any, ns: str, dsn: str, **options: Any) -> Tier0Manager:
    options.setdefault("pool_max_agents", 2)
    return Tier0Manager(graph=graph, namespace=ns, pg_dsn=dsn, ready_timeout_s=60.0, **options)


def task(skill: str = "count", **data: Any) -> dict[str, Any]:
    return {"task_type": "t", "required_skills": [skill], "data": data, "timeout_s": 30}


def hosts(ns: str) -> dict[str, dict[str, Any]]:
    """Pool hosts in ``ns``: name -> its describe() answer."""
    names = [(s, n) for s, n in actors.named_actors([ns]) if n.startswith(POOL_PREFIX)]
    return {f.name: dict(f.info) for f in actors.describe_all(names, timeout_s=10) if f.info}


def hosted(ns: str) -> dict[str, str]:
    """agent id -> the host holding it."""
    return {a["agent_id"]: name for name, info in hosts(ns).items() for a in info["agents"]}


def live(dsn: str, ns: str) -> dict[str, Any]:
    """active_instance rows of ``ns`` by agent id."""
    with Registry(dsn) as reg:
        return {r.logical_id: r for r in reg.active_instances() if r.namespace == ns}


def test_pooled_and_dedicated_agents_side_by_side(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    ns = ray_namespace
    graph = mock_graph(
        [agent("p1"), agent("p2"), agent("p3"), agent("solo", "dedicated", skills=["solo"])]
    )
    manager = manager_for(graph, ns, pg_dsn, allow_mass_removal=True)
    try:
        report = manager.reconcile_from_graph()
        assert report.ok, report.to_json()
        where = hosted(ns)
        assert sorted(where) == ["p1", "p2", "p3"], "the dedicated agent is in no host"
        assert len(set(where.values())) == 2, "at most 2 agents per host: two hosts"
        assert actors.lookup("solo", ns) is not None and actors.lookup("p1", ns) is None
        one_host = next(h for h in set(where.values()) if list(where.values()).count(h) == 2)

        rows = live(pg_dsn, ns)
        assert sorted(rows) == ["p1", "p2", "p3", "solo"], "one instance per agent"
        for pooled_id, host in where.items():
            row = rows[pooled_id]
            assert row.actor_name == host and row.metadata["placement"] == "pooled"
            assert row.pid == hosts(ns)[host]["pid"], "the host's pid"
        assert rows["solo"].actor_name == "solo" and rows["solo"].pid not in {
            info["pid"] for info in hosts(ns).values()
        }
        pair = [a for a, h in where.items() if h == one_host]
        assert rows[pair[0]].instance_id != rows[pair[1]].instance_id

        # routing reaches each pooled agent through its host, and the decision says so
        seen = {}
        for _ in range(6):
            out = manager.execute_task_on_graph_best(task())
            assert out.result["status"] == "completed"
            assert out.result["agent_id"] == out.decision.agent_id
            assert out.decision.actor_name == where[out.decision.agent_id]
            assert f"pooled in host {where[out.decision.agent_id]}" in out.decision.why
            seen[out.decision.agent_id] = out.result["result"]["pid"]
        assert sorted(seen) == ["p1", "p2", "p3"], "load spreads over the pooled agents"
        assert seen[pair[0]] == seen[pair[1]], "hostmates share a process"
        solo = manager.execute_task_on_graph_best(task("solo"))
        assert solo.decision.actor_name == "solo" and "own actor" in solo.decision.why
        assert manager.router.homes() == {**where, "solo": "solo"}

        plan = manager.plan()
        assert not plan.has_changes
        assert {e.agent_id: e.home for e in plan.in_sync} == {**where, "solo": "solo"}
        text = io.StringIO()
        print_plan(plan, text)
        for host in set(where.values()):
            assert f"pooled agent(s) in host {ns}/{host}" in text.getvalue()

        # a spec change replaces exactly that pooled agent; its hostmate keeps its instance
        changed = pair[0]
        upsert_agent(graph, agent(changed, params={"v": 2}))
        replan = manager.plan()
        assert [(a.kind, a.agent_id) for a in replan.actions] == [("replace", changed)]
        assert replan.actions[0].home == actors.pool_of(agent(changed))
        before = live(pg_dsn, ns)
        assert manager.reconcile_from_graph().ok
        after = live(pg_dsn, ns)
        assert after[changed].instance_id != before[changed].instance_id
        for other in ("p1", "p2", "p3", "solo"):
            if other != changed:
                assert after[other].instance_id == before[other].instance_id, other

        # a placement change is a replacement: dedicated -> pooled
        upsert_agent(graph, agent("solo", "pooled", skills=["solo"]))
        moved = manager.plan()
        assert [(a.kind, a.agent_id) for a in moved.actions] == [("replace", "solo")]
        assert manager.reconcile_from_graph().ok
        assert actors.lookup("solo", ns) is None, "its own actor is gone"
        assert "solo" in hosted(ns)

        # removing the last agents of a host removes the host; the other hosts stay
        everyone = hosted(ns)
        assert len(set(everyone.values())) >= 2
        target = everyone["solo"]
        leaving = sorted(a for a, h in everyone.items() if h == target)
        for agent_id in leaving:
            remove_agent(graph, agent_id)
        report = manager.reconcile_from_graph()
        assert report.ok
        assert sorted((o.action.kind, o.action.agent_id) for o in report.outcomes) == [
            ("remove", a) for a in leaving
        ]
        assert set(hosts(ns)) == set(everyone.values()) - {target}, "the emptied host is gone"
        assert set(live(pg_dsn, ns)) == set(everyone) - set(leaving)
    finally:
        manager.close()


def test_a_killed_host_is_never_routed_and_the_next_pass_heals_it(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    ns = ray_namespace
    graph = mock_graph([agent("k1"), agent("k2"), agent("k-solo", "dedicated")])
    manager = manager_for(graph, ns, pg_dsn, beat_sec=0.5)
    try:
        assert manager.reconcile_from_graph().ok
        [(host, info)] = hosts(ns).items()
        before = live(pg_dsn, ns)
        manager.router.cooldown_s = 1.0  # k1, k2 fail once below; served again after healing
        os.kill(int(info["pid"]), signal.SIGKILL)
        wait_until(lambda: actors.lookup(host, ns) is None, 30, "Ray to see the host dead")

        attempts = []
        for _ in range(8):  # the registry may still list k1, k2: they are never the answer
            out = manager.execute_task_on_graph_best(task())
            assert out.result["status"] == "completed"
            assert out.decision.agent_id == "k-solo"
            attempts += out.decision.failed_attempts
        assert len(attempts) <= 1, "one failed dispatch rules out every agent of the host"
        wait_until(lambda: set(live(pg_dsn, ns)) == {"k-solo"}, 20, "the relay to bury them")

        plan = manager.plan()
        assert sorted(a.agent_id for a in plan.create) == ["k1", "k2"]
        assert manager.reconcile_from_graph().ok
        after = live(pg_dsn, ns)
        assert sorted(after) == ["k-solo", "k1", "k2"]
        assert after["k1"].instance_id != before["k1"].instance_id
        assert after["k-solo"].instance_id == before["k-solo"].instance_id, "untouched"
        manager.router.invalidate()
        wait_until(lambda: not manager.explain_task(task())["k1"], 10, "the cool-down to end")
        served = {manager.execute_task_on_graph_best(task()).decision.agent_id for _ in range(6)}
        assert served == {"k1", "k2", "k-solo"}
    finally:
        manager.close()


def test_a_failing_setup_in_one_pooled_agent_leaves_its_host_serving(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    ns = ray_namespace
    broken = agent("f-broken", entrypoint="tests.agents_for_tests:FailingSetup")
    graph = mock_graph([broken, agent("f-ok")])
    manager = manager_for(graph, ns, pg_dsn)
    try:
        report = manager.reconcile_from_graph()
        outcome = {o.action.agent_id: o for o in report.outcomes}
        assert outcome["f-broken"].outcome == "failed"
        assert outcome["f-broken"].error == (
            "setup failed: RuntimeError: model weights not found: /models/missing.bin"
        )
        assert outcome["f-ok"].outcome == "succeeded"
        assert hosted(ns) == {"f-ok": outcome["f-ok"].detail["home"]}, "taken out of its host"
        assert manager.explain_task(task())["f-broken"] == [
            "not ready: setup failed: RuntimeError: model weights not found: /models/missing.bin"
        ]
        bad = manager.execute_task_on_graph_best(task(**{"raise": "on purpose"}))
        assert bad.result["status"] == "failed" and bad.decision.agent_id == "f-ok"
        for _ in range(3):  # a raising handle stays with its task
            out = manager.execute_task_on_graph_best(task())
            assert out.result["status"] == "completed" and out.decision.agent_id == "f-ok"
    finally:
        manager.close()


SKILLS = ["a", "b", "c"]


def test_routing_over_mixed_placements_lands_on_qualified_live_agents(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    """Property: for any task, the registry router and the Ray-fallback router (registry
    down) both land it on a live agent holding every required skill, pooled or dedicated,
    or refuse exactly when none exists."""
    ns = ray_namespace
    fleet = [
        agent("m-p1", skills=["a"]),
        agent("m-p2", skills=["a", "b"]),
        agent("m-p3", skills=["c"], organ_id="other"),
        agent("m-d1", "dedicated", skills=["b"]),
        agent("m-d2", "dedicated", skills=["a", "c"]),
    ]
    graph = mock_graph(fleet)
    manager = manager_for(graph, ns, pg_dsn)
    fallback = Router(graph, None, namespace=ns)
    try:
        assert manager.reconcile_from_graph().ok
        skills_of = {s.agent_id: set(s.skills) for s in fleet}

        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.sampled_from([*SKILLS, "z"]), unique=True, min_size=1, max_size=2))
        def check(required: list[str]) -> None:
            qualified = {a for a, have in skills_of.items() if set(required) <= have}
            for router in (manager.router, fallback):
                request = {"task_type": "p", "required_skills": required, "data": {"x": 1}}
                if not qualified:
                    with pytest.raises(NoQualifiedAgent):
                        router.execute(request)
                    continue
                out = router.execute(request)
                assert out.decision.agent_id in qualified
                assert out.result["status"] == "completed"
                assert out.result["agent_id"] == out.decision.agent_id

        check()
    finally:
        manager.close()
