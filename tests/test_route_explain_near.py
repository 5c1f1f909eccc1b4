"""route_explain_near (the refusal's query) against route_explain on generated fleets: the
closest agents get exactly route_explain's reasons, and the summary counts the others."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.fleetgen import generate_fleet, load_fleet
from seedcore_thin.tasks import TaskRequest

FLEET = generate_fleet(300, seed=3, gpu_share=0.2, direct_policy_share=0.2)
TASKS = [
    TaskRequest(task_type="one-skill", required_skills=[FLEET.organs[0].provides_skills[0]]),
    TaskRequest(
        task_type="skills-model-organ",
        required_skills=FLEET.organs[1].provides_skills[:2],
        required_models=["model-03"],
        organ_id=FLEET.organs[1].organ_id,
        requires=["pii_export"],
        requires_external_network=True,
    ),
    TaskRequest(task_type="gpus", required_models=["model-01"], min_gpus=1.5),
    TaskRequest(task_type="nothing", requires=["cross_region_transfer"]),
    TaskRequest(task_type="unknown", required_skills=["speech_to_text"]),
]


def _gpus_text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def expected_summary(
    task: TaskRequest, full: dict[str, list[str]], explained: set[str]
) -> dict[str, int]:
    """Per reason, the agents not explained that have it (GPU reasons summed)."""
    counts: Counter[str] = Counter()
    for agent_id, reasons in full.items():
        if agent_id in explained:
            continue
        short = [r for r in reasons if r == "no GPU" or r.startswith("needs ")]
        counts.update(r for r in reasons if r not in short)
        if short:
            counts[f"fewer than {_gpus_text(task.min_gpus)} GPUs"] += 1
    return dict(counts)


@pytest.fixture(scope="module")
def fleet_300(falkordb_server: str) -> Iterator[FalkorDBGraphClient]:
    client = FalkorDBGraphClient(f"{falkordb_server}/near_{uuid.uuid4().hex[:8]}")
    migrate_graph(client)
    load_fleet(client, FLEET)
    yield client
    client.delete_graph()
    client.close()


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.task_type)
@pytest.mark.parametrize("limit", [1, 20, 1000])
def test_closest_agents_and_summary(
    fleet_300: FalkorDBGraphClient, task: TaskRequest, limit: int
) -> None:
    params = task.route_params()
    full = {r["agent_id"]: r["reasons"] for r in fleet_300.run("route_explain", **params)}
    [row] = fleet_300.run("route_explain_near", **params, limit=limit)
    assert row["agents"] == len(full) == 300
    explained = row["explained"]
    assert len(explained) <= limit
    for entry in explained:
        assert entry["reasons"] == full[entry["agent_id"]]
    met = [e["met"] for e in explained]
    assert met == sorted(met, reverse=True), "closest first"
    if task.task_type not in ("unknown", "nothing"):
        assert met and met[0] >= 1, "the closest agent meets a need"
    summary = {s["reason"]: s["agents"] for s in row["summary"]}
    assert summary == expected_summary(task, full, {e["agent_id"] for e in explained})


def test_nobody_near_still_answers(fleet_300: FalkorDBGraphClient) -> None:
    task = TaskRequest(task_type="t", required_skills=["speech_to_text"])
    [row] = fleet_300.run("route_explain_near", **task.route_params(), limit=50)
    assert row["explained"] == []
    assert row["summary"] == [
        {"rule": "skills", "reason": "missing skill speech_to_text", "agents": 300}
    ]
