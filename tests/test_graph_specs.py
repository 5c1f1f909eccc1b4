"""Reading specs from a real graph: bad nodes are reported, good ones still load."""

from __future__ import annotations

import pytest

from seedcore_thin.errors import GraphQueryError
from seedcore_thin.graph import load_cypher_file, load_fixture
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.local.fleetgen import generate_fleet, load_fleet
from seedcore_thin.queries import cypher_dir

TEST_FIXTURES = cypher_dir() / "fixtures" / "tests"


def test_invalid_nodes_are_reported_while_valid_ones_load(graph: FalkorDBGraphClient) -> None:
    load_fixture(graph)
    load_cypher_file(graph, TEST_FIXTURES / "invalid_agents.cypher")
    result = graph.read_agent_specs()
    valid = {s.agent_id for s in result.valid}
    assert {"good-1", "good-2", "yolo-detector-1", "vision-gpu-1"} <= valid
    assert len(valid) == 17  # the 15 of the example fleet and the 2 good lab agents
    problems = {(p.agent_id, p.field) for p in result.invalid}
    assert problems == {
        (None, "id"),
        ("negative-cpus", "num_cpus"),
        ("cpus-as-text", "num_cpus"),
        ("gpus-as-list", "num_gpus"),
        ("custom-as-list-json", "custom_resources_json"),
        ("custom-bad-values", "custom_resources_json"),
        ("wrong-lifetime", "lifetime"),
        ("concurrency-float", "max_concurrency"),
        ("no-organ", "MEMBER_OF"),
        ("42", "id"),
    }
    reasons = {(p.agent_id, p.field): p.reason for p in result.invalid}
    assert "nameless wonder" in reasons[(None, "id")]
    assert "greater than or equal to 0" in reasons[("negative-cpus", "num_cpus")]
    assert "exactly one organ, found 0" in reasons[("no-organ", "MEMBER_OF")]
    assert "JSON object" in reasons[("custom-as-list-json", "custom_resources_json")]
    # list_agent_specs gives the valid ones only
    assert {s.agent_id for s in graph.list_agent_specs()} == valid


def test_a_map_shaped_property_is_refused_by_the_database(graph: FalkorDBGraphClient) -> None:
    """Why resources are flat: FalkorDB (like Neo4j) will not store a map as a property."""
    with pytest.raises(GraphQueryError, match="primitive types"):
        load_cypher_file(graph, TEST_FIXTURES / "map_property.cypher")
    assert graph.read_agent_specs().invalid == []


def test_generated_fleet_round_trips(graph: FalkorDBGraphClient) -> None:
    fleet = generate_fleet(600, seed=7)
    version = load_fleet(graph, fleet, batch_size=250)
    assert version == len(fleet.policies) + len(fleet.organs) + 3  # one bump per command
    result = graph.read_agent_specs()
    assert result.invalid == []
    assert result.valid == fleet.agents
    assert graph.list_organ_specs() == sorted(fleet.organs, key=lambda o: o.organ_id)
    organ = fleet.organs[0].organ_id
    members = [r["agent_id"] for r in graph.run("agents_in_organ", organ_id=organ)]
    assert members == [a.agent_id for a in fleet.agents if a.organ_id == organ]
    model = "model-03"
    users = [r["agent_id"] for r in graph.run("agents_using_model", model_name=model)]
    assert users  # non-empty, so the comparison means something
    assert users == [a.agent_id for a in fleet.agents if model in a.models]
    governed = {
        r["organ_id"] for r in graph.run("organs_governed_by_policy", policy_id="pii_restricted")
    }
    assert governed  # seed 7 puts pii_restricted over two organs
    assert governed == {
        o.organ_id for o in fleet.organs if "pii_restricted" in o.governed_by_policies
    }


def test_generated_fleets_are_deterministic() -> None:
    assert generate_fleet(50, seed=3) == generate_fleet(50, seed=3)
    assert generate_fleet(50, seed=3) != generate_fleet(50, seed=4)
    fleet = generate_fleet(2000, seed=1)
    assert any(a.resources.num_gpus >= 1 for a in fleet.agents)
    assert any(a.policies for a in fleet.agents)


def test_hostile_property_values_are_reports_never_exceptions(
    graph: FalkorDBGraphClient,
) -> None:
    """Issue 13: whatever a property holds, a read names the agent and the property."""
    load_cypher_file(graph, TEST_FIXTURES / "hostile_agents.cypher")
    result = graph.read_agent_specs()
    assert [s.agent_id for s in result.valid] == ["fine"]
    problems = [(p.agent_id, p.field) for p in result.invalid]
    assert sorted(problems, key=str) == sorted(
        [
            ("nan-cpus", "num_cpus"),
            ("inf-concurrency", "max_concurrency"),
            ("nested-memory", "memory_mb"),
            ("list-lifetime", "lifetime"),
            ("huge-lifetime", "lifetime"),
            ("int-custom", "custom_resources_json"),
            ("infinite-param", "params"),
            ("float-organ", "MEMBER_OF"),
            ("deep-metadata", "metadata_json"),
            ("odd-skills", "HAS_SKILL"),
        ],
        key=str,
    )
    reasons = {(p.agent_id, p.field): p.reason for p in result.invalid}
    assert "finite" in reasons[("nan-cpus", "num_cpus")]
    assert "recursion" in reasons[("deep-metadata", "metadata_json")]
    assert all(len(p.reason) < 300 for p in result.invalid), "a huge value is not echoed"
