"""Pure-logic tests of the spec models and of turning graph rows into specs."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from seedcore_thin.errors import InvalidSpec
from seedcore_thin.specs import (
    AgentSpec,
    OrganSpec,
    PolicySpec,
    Resources,
    agent_spec_from_row,
    agent_specs_from_rows,
)


def _row(**overrides: object) -> dict[str, object]:
    """A valid list_agent_specs row; override fields to break it."""
    row: dict[str, object] = {
        "agent_id": "a1",
        "name": "A one",
        "namespace": None,
        "lifetime": "detached",
        "num_cpus": 0.5,
        "num_gpus": 0.0,
        "memory_mb": 256,
        "custom_resources_json": '{"tpu": 1}',
        "max_concurrency": 2,
        "metadata_json": '{"team": "x"}',
        "organ_ids": ["vision"],
        "skills": ["b", "a"],
        "models": ["m1"],
        "policies": [],
    }
    row.update(overrides)
    return row


def test_defaults_and_normalised_lists() -> None:
    spec = AgentSpec(agent_id="a1", organ_id="o1", skills=["y", "x", "x"], models=("m",))
    assert spec.skills == ["x", "y"]
    assert spec.models == ["m"]
    assert spec.lifetime == "detached"
    assert spec.namespace is None
    assert spec.resources == Resources(num_cpus=1.0, num_gpus=0.0, memory_mb=None, custom={})
    assert spec.max_concurrency == 1


def test_original_design_metadata_policies_are_folded_into_the_list() -> None:
    spec = AgentSpec(
        agent_id="a1",
        organ_id="o1",
        policies=["p0"],
        metadata={"policies": "p2, p1", "owner": "team-a"},
    )
    assert spec.policies == ["p0", "p1", "p2"]
    assert spec.metadata == {"owner": "team-a"}


def test_ray_memory_bytes_become_mebibytes_rounded_up() -> None:
    resources = Resources(memory=3 * 1024 * 1024 + 1)  # type: ignore[call-arg]
    assert resources.memory_mb == 4
    assert resources.memory_bytes == 4 * 1024 * 1024
    assert Resources(memory_mb=10).memory_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"organ_id": "o"}, "agent_id"),
        ({"agent_id": "has space", "organ_id": "o"}, "agent_id"),
        ({"agent_id": "a", "organ_id": "o", "resources": {"num_cpus": -1}}, "num_cpus"),
        ({"agent_id": "a", "organ_id": "o", "resources": {"num_cpus": "1"}}, "num_cpus"),
        ({"agent_id": "a", "organ_id": "o", "resources": {"custom": {"x": -2}}}, "custom"),
        ({"agent_id": "a", "organ_id": "o", "lifetime": "forever"}, "lifetime"),
        ({"agent_id": "a", "organ_id": "o", "max_concurrency": 0}, "max_concurrency"),
        ({"agent_id": "a", "organ_id": "o", "skills": [1, 2]}, "skills"),
        ({"agent_id": "a", "organ_id": "o", "metadata": {"x": object()}}, "metadata"),
        ({"agent_id": "a", "organ_id": "o", "skills": ["a\x00b"]}, "skills"),
        ({"agent_id": "a", "organ_id": "o", "name": "\ud83d"}, "name"),
    ],
)
def test_invalid_specs_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        AgentSpec.model_validate(data)
    assert any(field in ".".join(map(str, e["loc"])) for e in info.value.errors())


def test_params_nested_deeper_than_pydantic_can_dump_are_refused() -> None:
    """A spec that validates must also dump (for Ray) and hash: refuse what would not."""
    deep: list[object] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValidationError, match="params"):
        AgentSpec(agent_id="a", organ_id="o", params={"x": deep})


def test_spec_hash_covers_what_needs_a_new_actor_and_ignores_metadata() -> None:
    base = AgentSpec(agent_id="a1", organ_id="o1", skills=["s"], models=["m"])
    assert (
        base.spec_hash()
        == AgentSpec(agent_id="a1", organ_id="o1", skills=["s"], models=["m"]).spec_hash()
    )
    assert base.spec_hash() == base.model_copy(update={"metadata": {"note": "x"}}).spec_hash()
    changes = [
        {"organ_id": "o2"},
        {"skills": ["s", "t"]},
        {"models": []},
        {"services": ["camera_service"]},
        {"policies": ["p"]},
        {"lifetime": "non_detached"},
        {"namespace": "prod"},
        {"resources": Resources(num_cpus=0.5)},
        {"resources": Resources(custom={"tpu": 1})},
    ]
    hashes = {base.model_copy(update=change).spec_hash() for change in changes}
    assert len(hashes) == len(changes)
    assert base.spec_hash() not in hashes


def test_spec_hash_without_services_did_not_move_when_services_came() -> None:
    """Upgrading must not replace every running agent: the hash before services existed."""
    spec = AgentSpec(agent_id="a1", organ_id="o1", skills=["s"], models=["m"], policies=["p"])
    assert spec.spec_hash() == "4b2a2ee78c65ba1c6748a738af75f5f0f876a0b5961b3eb5d96d1bacce0b9e7a"
    assert spec.model_copy(update={"services": ["svc"]}).spec_hash() != spec.spec_hash()


def test_services_are_names_like_skills_and_models() -> None:
    spec = AgentSpec(agent_id="a1", organ_id="o1", services=["storage_service", "camera_service"])
    assert spec.services == ["camera_service", "storage_service"]
    assert AgentSpec(agent_id="a1", organ_id="o1", services="b, a").services == ["a", "b"]
    assert spec.upsert_params()["services"] == ["camera_service", "storage_service"]
    read = agent_spec_from_row(_row(services=["x"]))
    assert isinstance(read, AgentSpec) and read.services == ["x"]
    bad = agent_spec_from_row(_row(services=[1]))
    assert isinstance(bad, list) and [problem.field for problem in bad] == ["USES_SERVICE"]


@given(st.permutations(["a", "b", "c", "d"]))
def test_spec_hash_ignores_list_order(order: list[str]) -> None:
    spec = AgentSpec(agent_id="a1", organ_id="o", skills=order, policies=order)
    assert (
        spec.spec_hash()
        == AgentSpec(
            agent_id="a1", organ_id="o", skills=["a", "b", "c", "d"], policies=["d", "c", "b", "a"]
        ).spec_hash()
    )


def test_upsert_params_round_trip_through_a_row() -> None:
    spec = AgentSpec(
        agent_id="a1",
        organ_id="o1",
        skills=["s"],
        services=["camera_service"],
        resources=Resources(num_cpus=0.25, memory_mb=64, custom={"tpu": 2}),
        metadata={"k": [1, 2]},
    )
    params = spec.upsert_params()
    assert json.loads(str(params["custom_resources_json"])) == {"tpu": 2.0}
    params["organ_ids"] = [params.pop("organ_id")]
    assert agent_spec_from_row(params) == spec


def test_rows_valid_and_invalid_are_separated_and_every_problem_is_named() -> None:
    rows = [
        _row(agent_id="ok-1"),
        _row(agent_id=None, name="orphan"),
        _row(agent_id="neg", num_cpus=-0.5),
        _row(agent_id="str-cpu", num_cpus="lots"),
        _row(agent_id="list-gpu", num_gpus=[1, 2]),
        _row(agent_id="bad-json", custom_resources_json="{not json"),
        _row(agent_id="list-json", custom_resources_json="[1, 2]"),
        _row(agent_id="two-organs", organ_ids=["a", "b"]),
        _row(agent_id="no-organ", organ_ids=[]),
        _row(agent_id="bad-meta", metadata_json='"just a string"'),
        _row(agent_id="ok-2", policies=["p"]),
    ]
    result = agent_specs_from_rows(rows)
    assert [s.agent_id for s in result.valid] == ["ok-1", "ok-2"]
    found = {(r.agent_id, r.field) for r in result.invalid}
    assert found == {
        (None, "id"),
        ("neg", "num_cpus"),
        ("str-cpu", "num_cpus"),
        ("list-gpu", "num_gpus"),
        ("bad-json", "custom_resources_json"),
        ("list-json", "custom_resources_json"),
        ("two-organs", "MEMBER_OF"),
        ("no-organ", "MEMBER_OF"),
        ("bad-meta", "metadata_json"),
    }
    orphan = next(r for r in result.invalid if r.agent_id is None)
    assert "orphan" in orphan.reason
    error = next(r for r in result.invalid if r.agent_id == "neg").as_error()
    assert isinstance(error, InvalidSpec)
    assert error.agent_id == "neg" and error.field == "num_cpus"
    assert "agent neg" in str(error)


def test_several_problems_of_one_node_are_all_reported() -> None:
    outcome = agent_spec_from_row(_row(agent_id="multi", num_cpus=-1, max_concurrency="x"))
    assert isinstance(outcome, list)
    assert {p.field for p in outcome} == {"num_cpus", "max_concurrency"}


def test_organ_and_policy_specs_normalise() -> None:
    organ = OrganSpec(organ_id="o", provides_skills=["b", "a"], governed_by_policies="p2,p1")
    assert organ.provides_skills == ["a", "b"]
    assert organ.governed_by_policies == ["p1", "p2"]
    policy = PolicySpec(policy_id="no_external_egress", forbids=["external_network"])
    assert policy.forbids == ["external_network"]
    with pytest.raises(ValidationError):
        OrganSpec(organ_id="")


# Every property list_agent_specs returns, as a report names it (relationships by type).
GRAPH_PROPERTIES = {
    "id", "name", "namespace", "lifetime", "num_cpus", "num_gpus", "memory_mb", "max_concurrency",
    "custom_resources_json", "metadata_json", "entrypoint", "params", "runtime_env",
    "MEMBER_OF", "HAS_SKILL", "USES", "USES_SERVICE", "GOVERNED_BY",
}  # fmt: skip
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates, NUL too
_HOSTILE = [
    "x" * 200_000,
    "a\x00b",
    "\ud83d",
    "[" * 5000,
    '{"a": ' + "1" * 5000 + "}",
    '{"a": NaN}',
    '{"a": 1e999}',
    '{"policies": [1]}',
    '{"env_vars": {"A": 1}}',
    '{"\\ud83d": 1}',
    "json.decoder:JSONDecoder",
    10**5000,
    2**64,
    float("nan"),
    float("-inf"),
]


def _hostile(index: int) -> object:
    """By index, so that hypothesis neither prints the huge values nor shrinks them."""
    return _HOSTILE[index]


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | _ANY_TEXT
_JSON_TEXT = st.dictionaries(
    _ANY_TEXT, st.recursive(_SCALAR, st.lists, max_leaves=6), max_size=3
).map(json.dumps)
_ANY_VALUE = st.recursive(
    _SCALAR | st.sampled_from(range(len(_HOSTILE))).map(_hostile),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=8,
)
_COLUMNS = [*_row(), "entrypoint", "params", "runtime_env", "services"]
# a valid row with up to four columns replaced by anything (None: as if missing)
_HOSTILE_ROW = st.dictionaries(st.sampled_from(_COLUMNS), _ANY_VALUE | _JSON_TEXT, max_size=4).map(
    lambda hostile: {**_row(), **hostile}
)


def _readable_as_is(value: object) -> bool:
    return isinstance(value, str) and value.isprintable() and len(value) <= 100


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_HOSTILE_ROW, max_size=4))
def test_any_property_value_is_a_report_naming_agent_and_property(
    rows: list[dict[str, object]],
) -> None:
    """Issue 13: a row from the graph never raises; each bad one is named, others load."""
    result = agent_specs_from_rows(rows)
    expected_valid = []
    for row in rows:
        outcome = agent_spec_from_row(row)
        if isinstance(outcome, AgentSpec):
            expected_valid.append(outcome)
            assert outcome.agent_id == row["agent_id"]
            outcome.model_dump(mode="json")  # what the actor gets: it must serialise
            assert len(outcome.spec_hash()) == 64
            json.dumps(outcome.upsert_params()).encode()
            continue
        assert outcome, "an invalid row has at least one report"
        for report in outcome:
            assert report.field in GRAPH_PROPERTIES
            if _readable_as_is(row.get("agent_id")):
                assert report.agent_id == row["agent_id"]
            elif report.agent_id is not None:
                assert len(report.agent_id) <= 100 and report.agent_id.isprintable()
            str(report).encode("utf-8")  # fit for any log
    assert result.valid == expected_valid
