"""Routing on the example fleet and on generated fleets, with real FalkorDB, PostgreSQL and Ray.

Actors are started once per module (a handful of small Ray workers) in a namespace of our
own; each test gets a fresh graph and a fresh registry database and registers the instances
it wants to be live, so liveness is exactly what the test says.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seedcore_thin import actors
from seedcore_thin.cli import route as route_cli
from seedcore_thin.errors import DispatchFailed, NoQualifiedAgent, RegistryUnavailable
from seedcore_thin.graph import upsert_agent
from seedcore_thin.local.fleetgen import generate_fleet, load_fleet
from seedcore_thin.registry import InstanceRecord, Registry
from seedcore_thin.router import LiveInstance, Router, StaticLive
from seedcore_thin.specs import AgentSpec, Resources
from tests.fixtures_ray import free_port

pytestmark = pytest.mark.ray

#: Example-fleet agents that get a real actor (vision-gpu-1 needs a GPU this machine lacks;
#: resnet-classifier-1 and risk-scorer-1 stay without one on purpose).
WITH_ACTORS = [
    "yolo-detector-1",
    "yolo-detector-2",
    "llm-summarizer-1",
    "llm-summarizer-2",
    "web-researcher-1",
    "ledger-analyst-1",
    "translator-1",
]
SUMMARIZERS = {"llm-summarizer-1", "llm-summarizer-2", "web-researcher-1", "ledger-analyst-1"}


def _start(agent_id: str, namespace: str) -> str:
    """A real AgentActor named after the agent; returns its instance id once it answers."""
    spec = AgentSpec(
        agent_id=agent_id, organ_id="any", resources=Resources(num_cpus=0.0), max_concurrency=4
    )
    info = actors.start_agent(actors.create_agent(spec, namespace), 60)
    assert info is not None and info["state"] == "alive"
    return str(info["instance_id"])


@pytest.fixture(scope="module")
def fleet_actors(ray_session: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(namespace, {agent_id: instance_id}) of the example-fleet actors; killed afterwards."""
    namespace = f"route-{uuid.uuid4().hex[:8]}"
    started: dict[str, str] = {}
    try:
        for agent_id in WITH_ACTORS:
            started[agent_id] = _start(agent_id, namespace)
        yield namespace, started
    finally:
        for agent_id in started:
            actors.kill(agent_id, namespace, wait_s=2.0)


def _register(registry: Registry, namespace: str, agents: dict[str, str]) -> None:
    """Make these instances live in the registry (registered and beaten)."""
    epoch = registry.call("current_epoch")
    for agent_id, instance_id in agents.items():
        registry.register_instance(
            InstanceRecord(
                instance_id=uuid.UUID(instance_id),
                logical_id=agent_id,
                epoch=epoch,
                actor_name=agent_id,
                namespace=namespace,
            )
        )
        assert registry.call("beat", instance_id=uuid.UUID(instance_id), epoch=epoch)


@pytest.fixture
def live_fleet(
    fleet_graph: Any, registry: Registry, fleet_actors: tuple[str, dict[str, str]]
) -> tuple[Router, Registry, str, dict[str, str]]:
    namespace, started = fleet_actors
    _register(registry, namespace, started)
    router = Router.from_registry(
        fleet_graph, registry, namespace=namespace, live_refresh_s=0.0, version_check_s=0.0
    )
    return router, registry, namespace, started


def _accounts_for_the_fleet(router: Router, task: Any, refusal: NoQualifiedAgent) -> None:
    """A refusal explains the closest agents exactly as ``explain`` does, and its summary
    counts exactly the others' reasons (GPU shortfalls summed as 'fewer than N GPUs')."""
    full = router.explain(task)
    for agent_id, why in refusal.reasons.items():
        assert why == full[agent_id], agent_id
    counts: Counter[str] = Counter()
    gpus = float(task.get("min_gpus", 0))
    for agent_id, why in full.items():
        if agent_id in refusal.reasons:
            continue
        short = [r for r in why if r == "no GPU" or r.startswith("needs ")]
        counts.update(r for r in why if r not in short)
        if short:
            counts[f"fewer than {gpus:g} GPUs"] += 1
    assert refusal.summary == dict(counts)


def test_skill_filter_runs_on_a_real_actor(live_fleet: Any) -> None:
    router, _, namespace, started = live_fleet
    routed = router.execute({"task_type": "summarize", "required_skills": ["summarization"]})
    d = routed.decision
    assert d.agent_id in SUMMARIZERS
    assert routed.result["status"] == "completed"
    assert routed.result["agent_id"] == d.agent_id
    assert d.instance_id == started[d.agent_id] == routed.result["instance_id"]
    assert d.namespace == namespace and d.live_source == "registry"
    assert d.qualified == 4 and d.live_qualified == 4
    assert d.latency_ms > 0 and "least busy of 4" in d.why and d.agent_id in d.why


def test_model_filter(live_fleet: Any) -> None:
    router = live_fleet[0]
    chosen = {
        router.execute({"task_type": "detect", "required_models": ["yolov8n"]}).decision.agent_id
        for _ in range(4)
    }
    assert chosen == {"yolo-detector-1", "yolo-detector-2"}


def test_organ_filter(live_fleet: Any) -> None:
    router = live_fleet[0]
    task = {"task_type": "s", "required_skills": ["summarization"], "organ_id": "finance"}
    for _ in range(3):
        assert router.execute(task).decision.agent_id == "ledger-analyst-1"


def test_gpu_filter_refuses_cpu_agents_and_says_why(live_fleet: Any) -> None:
    router = live_fleet[0]
    task = {"task_type": "seg", "required_skills": ["object_detection"], "min_gpus": 1}
    with pytest.raises(NoQualifiedAgent) as err:
        router.execute(task)
    reasons = err.value.reasons
    assert reasons["vision-gpu-1"] == ["not live (no current-epoch instance in active_instance)"]
    assert reasons["yolo-detector-1"] == ["no GPU"]
    assert "llm-summarizer-1" not in reasons  # not close: counted in the summary
    assert err.value.summary["missing skill object_detection"] == 12  # 15 minus 3 detectors
    assert "missing skill object_detection" in router.explain(task)["llm-summarizer-1"]
    _accounts_for_the_fleet(router, task, err.value)
    two = dict(task, min_gpus=2)
    with pytest.raises(NoQualifiedAgent) as err:
        router.route(two)
    assert err.value.reasons["vision-gpu-1"] == ["needs 2 GPUs, has 1"]


def test_gpu_agent_is_chosen_when_live(live_fleet: Any) -> None:
    router, registry, namespace, _ = live_fleet
    _register(registry, namespace, {"vision-gpu-1": str(uuid.uuid4())})
    task = {"task_type": "seg", "required_skills": ["object_detection"], "min_gpus": 0.5}
    decision = router.route(task)
    assert decision.agent_id == "vision-gpu-1"
    assert "at least 0.5 GPU(s)" in decision.why


def test_organ_inherited_policy_is_never_crossed(live_fleet: Any) -> None:
    router = live_fleet[0]
    task = {
        "task_type": "research",
        "required_skills": ["summarization"],
        "requires_external_network": True,
    }
    chosen = {router.execute(task).decision.agent_id for _ in range(6)}
    assert chosen == {"llm-summarizer-1", "llm-summarizer-2", "web-researcher-1"}
    with pytest.raises(NoQualifiedAgent) as err:
        router.execute(dict(task, organ_id="finance"))
    assert err.value.reasons["ledger-analyst-1"] == [
        "policy no_external_egress forbids external_network (through organ finance)",
        "policy pii_restricted forbids external_network (through organ finance)",
    ]
    assert err.value.reasons["llm-summarizer-1"] == ["not in organ finance"]


def test_direct_agent_policy(live_fleet: Any) -> None:
    router = live_fleet[0]
    task = {"task_type": "translate", "required_skills": ["translation"]}
    assert router.execute(task).decision.agent_id == "translator-1"
    with pytest.raises(NoQualifiedAgent) as err:
        router.execute(dict(task, requires=["cross_region_transfer"]))
    assert err.value.reasons["translator-1"] == [
        "policy eu_data_residency forbids cross_region_transfer"
    ]


def test_refusal_gives_a_reason_for_every_agent(live_fleet: Any) -> None:
    router = live_fleet[0]
    with pytest.raises(NoQualifiedAgent) as err:
        router.execute({"task_type": "x", "required_skills": ["telepathy"]})
    assert err.value.reasons == {}  # nobody came close
    assert err.value.summary == {"missing skill telepathy": 15}  # every agent of the fleet
    reasons = router.explain({"task_type": "x", "required_skills": ["telepathy"]})
    assert len(reasons) == 15
    assert all(r == ["missing skill telepathy"] for r in reasons.values())


def test_dead_agents_are_never_chosen(live_fleet: Any) -> None:
    router, registry, _, started = live_fleet
    registry.call("deregister_instance", instance_id=uuid.UUID(started["llm-summarizer-1"]))
    task = {"task_type": "s", "required_skills": ["summarization"], "organ_id": "language"}
    chosen = {router.execute(task).decision.agent_id for _ in range(6)}
    assert chosen == {"llm-summarizer-2", "web-researcher-1"}
    explained = router.explain(task)
    assert explained["llm-summarizer-1"] == [
        "not live (no current-epoch instance in active_instance)"
    ]
    assert explained["llm-summarizer-2"] == []


def test_old_epoch_instances_are_never_used(live_fleet: Any) -> None:
    router, registry, namespace, started = live_fleet
    registry.call("rotate_epoch")  # every instance registered so far is now of an old epoch
    task = {"task_type": "s", "required_skills": ["summarization"]}
    with pytest.raises(NoQualifiedAgent) as err:
        router.execute(task)
    assert all(err.value.reasons[a][0].startswith("not live") for a in SUMMARIZERS)
    _register(registry, namespace, {"llm-summarizer-2": started["llm-summarizer-2"]})
    for _ in range(3):
        assert router.execute(task).decision.agent_id == "llm-summarizer-2"


def test_load_spreads_across_equally_good_agents(live_fleet: Any) -> None:
    router = live_fleet[0]
    task = {"task_type": "s", "required_skills": ["summarization"], "organ_id": "language"}
    sequential = Counter(router.execute(task).decision.agent_id for _ in range(9))
    assert sequential == {"llm-summarizer-1": 3, "llm-summarizer-2": 3, "web-researcher-1": 3}

    router.in_flight["llm-summarizer-1"] += 5  # busy elsewhere: the others come first
    assert {router.route(task).agent_id for _ in range(4)} == {
        "llm-summarizer-2",
        "web-researcher-1",
    }
    router.in_flight["llm-summarizer-1"] -= 5

    chosen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(4):
            agent = router.execute(task).decision.agent_id
            with lock:
                chosen.append(agent)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    spread = Counter(chosen)
    assert set(spread) == {"llm-summarizer-1", "llm-summarizer-2", "web-researcher-1"}
    assert sum(spread.values()) == 12 and max(spread.values()) <= 6
    assert not router.in_flight  # every reservation was released


def test_failed_dispatch_tries_the_next_agent_and_cools_down(live_fleet: Any) -> None:
    _, registry, namespace, _ = live_fleet
    now = [1000.0]
    router = Router.from_registry(
        live_fleet[0].graph, registry, namespace=namespace, cooldown_s=30.0, clock=lambda: now[0]
    )
    # risk-scorer-1 is live in the registry but has no actor: a dead agent not yet expired
    _register(registry, namespace, {"risk-scorer-1": str(uuid.uuid4())})
    task = {"task_type": "a", "required_skills": ["anomaly_detection"], "organ_id": "finance"}
    router.in_flight["ledger-analyst-1"] += 1  # busy elsewhere, so the dead one is tried first
    routed = router.execute(task)
    assert routed.decision.agent_id == "ledger-analyst-1"
    assert [a for a, _ in routed.decision.failed_attempts] == ["risk-scorer-1"]
    router.in_flight["ledger-analyst-1"] -= 1
    assert router.execute(task).decision.failed_attempts == ()  # cooling: not tried again

    only_dead = {"task_type": "a", "required_models": ["xgboost-risk"]}
    with pytest.raises(NoQualifiedAgent) as refused:
        router.execute(only_dead)  # never a fallback to ledger-analyst-1, which lacks the model
    assert refused.value.reasons["risk-scorer-1"] == [
        "cooling down for 30.0 s after a failed dispatch"
    ]
    assert "ledger-analyst-1" not in refused.value.reasons  # not close: in the summary
    assert router.explain(only_dead)["ledger-analyst-1"] == ["missing model xgboost-risk"]
    _accounts_for_the_fleet(router, only_dead, refused.value)
    now[0] += 31.0  # the cool-down is over: it is tried again, and fails again
    with pytest.raises(DispatchFailed) as err:
        router.execute(only_dead)
    assert [a for a, _ in err.value.attempts] == ["risk-scorer-1"]


def test_registry_down_falls_back_to_ray_named_actors(
    fleet_graph: Any, fleet_actors: tuple[str, dict[str, str]]
) -> None:
    namespace, started = fleet_actors
    down = Registry(f"postgresql://postgres@127.0.0.1:{free_port()}/none", timeout=0.5)
    try:
        with pytest.raises(RegistryUnavailable):
            down.active_instances()
        router = Router.from_registry(fleet_graph, down, namespace=namespace)
        routed = router.execute({"task_type": "d", "required_skills": ["object_detection"]})
        assert routed.decision.live_source == "ray"
        assert routed.decision.agent_id in {"yolo-detector-1", "yolo-detector-2"}
        assert routed.decision.instance_id == started[routed.decision.agent_id]
        # the GPU agent qualifies but has no actor: refused with that reason, never faked
        with pytest.raises(NoQualifiedAgent) as err:
            router.execute({"task_type": "g", "required_skills": ["segmentation"]})
        assert err.value.reasons["vision-gpu-1"][0].startswith("not live (Ray has no")
    finally:
        down.close()


def test_candidates_cache_follows_graph_version_and_live_set(live_fleet: Any) -> None:
    router, registry, _, started = live_fleet
    task = {"task_type": "c", "required_skills": ["image_classification"]}
    with pytest.raises(NoQualifiedAgent):
        router.route(task)  # resnet-classifier-1 qualifies but is not live
    assert router.route({"task_type": "c", "required_skills": ["translation"]}).cached is False
    assert router.route({"task_type": "c", "required_skills": ["translation"]}).cached is True

    # the graph changes: translator-1 learns image classification (version bump)
    spec = next(s for s in router.graph.list_agent_specs() if s.agent_id == "translator-1")
    upsert_agent(
        router.graph, spec.model_copy(update={"skills": [*spec.skills, "image_classification"]})
    )
    decision = router.route(task)
    assert decision.agent_id == "translator-1" and decision.cached is False
    assert router.route(task).cached is True

    # the live set changes: translator-1 goes away, same graph version
    registry.call("deregister_instance", instance_id=uuid.UUID(started["translator-1"]))
    with pytest.raises(NoQualifiedAgent):
        router.route(task)


def test_generated_fleet_routes_only_to_qualified_agents(graph: Any, ray_namespace: str) -> None:
    fleet = generate_fleet(300, seed=7)
    load_fleet(graph, fleet)
    organ_policies = {o.organ_id: set(o.governed_by_policies) for o in fleet.organs}
    forbids = {p.policy_id: set(p.forbids) for p in fleet.policies}
    by_id = {a.agent_id: a for a in fleet.agents}
    skill = fleet.agents[0].skills[0]
    task = {"task_type": "g", "required_skills": [skill], "requires_external_network": True}

    def ok(agent: AgentSpec) -> bool:
        governing = set(agent.policies) | organ_policies[agent.organ_id]
        blocked = any("external_network" in forbids[p] for p in governing)
        return skill in agent.skills and not blocked

    qualified = sorted(a.agent_id for a in fleet.agents if ok(a))
    assert len(qualified) >= 3
    live_ids = qualified[:2]  # two real actors; every other agent is not live
    live = {a: LiveInstance(a, _start(a, ray_namespace), a, ray_namespace) for a in live_ids}
    router = Router(graph, StaticLive(live), namespace=ray_namespace)
    chosen = Counter(router.execute(task).decision.agent_id for _ in range(4))
    assert chosen == {live_ids[0]: 2, live_ids[1]: 2}
    explained = router.explain(task)
    assert {a for a, r in explained.items() if r == []} == set(live_ids)
    for agent_id, reasons in explained.items():
        assert (reasons == [] or reasons[0].startswith("not live")) == ok(by_id[agent_id])


def test_a_shape_reads_a_first_page_then_every_candidate(graph: Any) -> None:
    """A shape's first decision reads ``first_page`` candidates; its next use reads them all
    in the background; a page with nobody live is followed by the whole list at once."""
    fleet = generate_fleet(300, seed=7)
    load_fleet(graph, fleet)
    skill = fleet.agents[0].skills[0]
    holders = sorted(a.agent_id for a in fleet.agents if skill in a.skills)
    assert len(holders) > 10
    live = {a: LiveInstance(a, str(uuid.uuid4()), a, "page") for a in holders}
    task = {"task_type": "p", "required_skills": [skill]}
    router = Router(graph, StaticLive(live), namespace="page", first_page=5)
    first = router.route(task)
    assert (first.qualified, first.cached) == (5, False)
    assert "least busy of the first 5 live qualified agent(s)" in first.why
    second = router.route(task)  # asked again: the whole list is read behind this decision
    assert (second.qualified, second.cached) == (5, True)
    router.settle(30)
    third = router.route(task)
    assert (third.qualified, third.cached) == (len(holders), True)
    assert f"least busy of {len(holders)} live qualified" in third.why

    # nobody in the first page is live: the whole list is read before deciding
    params = {"skills": [skill], "models": [], "organ_id": None, "min_gpus": 0.0, "requires": []}
    page = {r["agent_id"] for r in graph.run("route_candidates", **params, limit=5)}
    rest = {a: i for a, i in live.items() if a not in page}
    decision = Router(graph, StaticLive(rest), namespace="page", first_page=5).route(task)
    assert decision.agent_id == min(rest) and decision.qualified == len(holders)
    assert decision.cached is False


def test_manager_execute_task_on_graph_best(
    fleet_graph: Any, registry: Registry, pg_dsn: str, fleet_actors: tuple[str, dict[str, str]]
) -> None:
    from seedcore_thin.manager import Tier0Manager

    namespace, started = fleet_actors
    _register(registry, namespace, {"translator-1": started["translator-1"]})
    manager = Tier0Manager(graph=fleet_graph, namespace=namespace, pg_dsn=pg_dsn)
    try:
        routed = manager.execute_task_on_graph_best(
            {"task_type": "translate", "required_skills": ["translation"], "data": {"t": "hi"}}
        )
        assert routed.decision.agent_id == "translator-1"
        assert routed.result["result"] == {"t": "hi"}
        with pytest.raises(NoQualifiedAgent):  # live, qualified agents only
            manager.execute_task_on_graph_best(
                {"task_type": "s", "required_skills": ["segmentation"]}
            )
    finally:
        manager.close()


def _task_file(tmp_path: Path, body: dict[str, Any]) -> str:
    path = tmp_path / f"task-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


def test_route_cli_exit_codes_and_explain(
    fleet_graph: Any,
    graph_uri: str,
    registry: Registry,
    pg_dsn: str,
    fleet_actors: tuple[str, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace, started = fleet_actors
    _register(registry, namespace, started)
    common = ["--graph-uri", graph_uri, "--pg-dsn", pg_dsn, "--namespace", namespace]
    research = _task_file(
        tmp_path,
        {"task_type": "r", "required_skills": ["summarization"], "requires_external_network": True},
    )

    assert route_cli.main([research, "--json", "--execute", *common]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["routed"] is True
    assert doc["decision"]["agent_id"] in SUMMARIZERS - {"ledger-analyst-1"}
    assert doc["result"]["agent_id"] == doc["decision"]["agent_id"]

    assert route_cli.main([research, "--explain", *common]) == 0
    text = capsys.readouterr().out
    assert "routed task" in text and "why" in text
    assert "ledger-analyst-1" in text
    assert "policy no_external_egress forbids external_network (through organ finance)" in text

    blocked = _task_file(
        tmp_path,
        {"task_type": "r", "required_skills": ["anomaly_detection"], "requires": ["pii_export"]},
    )
    assert route_cli.main([blocked, *common]) == 4
    text = capsys.readouterr().out
    assert "no qualified live agent" in text
    assert "risk-scorer-1" in text and "policy pii_restricted forbids pii_export" in text
    assert "agent(s): missing skill anomaly_detection" in text  # the others, counted
    assert route_cli.main([blocked, "--explain", *common]) == 4
    text = capsys.readouterr().out  # the full table, and how long it took
    assert "llm-summarizer-1" in text and "missing skill anomaly_detection" in text
    assert "every agent's reasons in" in text
    assert route_cli.main([blocked, "--json", *common]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert "risk-scorer-1" in doc["reasons"]
    assert len(doc["reasons"]) + doc["summary"]["missing skill anomaly_detection"] == 15

    bad = _task_file(tmp_path, {"task_type": "r", "min_gpus": "two"})
    assert route_cli.main([bad, *common]) == 1
    assert "min_gpus" in capsys.readouterr().err
