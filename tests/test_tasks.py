"""TaskRequest: strict validation that names the field, before any routing happens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seedcore_thin.errors import InvalidTask, NoQualifiedAgent
from seedcore_thin.router import Router
from seedcore_thin.tasks import EXTERNAL_NETWORK, TaskRequest


def test_names_are_sorted_and_deduplicated() -> None:
    task = TaskRequest.parse(
        {"task_type": "t", "required_skills": ["b", " a", "a"], "required_models": ["m", "m"]}
    )
    assert task.required_skills == ["a", "b"]
    assert task.required_models == ["m"]


def test_external_network_flag_joins_the_general_requirements() -> None:
    task = TaskRequest.parse(
        {"task_type": "t", "requires": ["pii_export"], "requires_external_network": True}
    )
    assert task.requirements == [EXTERNAL_NETWORK, "pii_export"]
    assert task.route_params()["requires"] == [EXTERNAL_NETWORK, "pii_export"]
    assert task.payload()["requires"] == [EXTERNAL_NETWORK, "pii_export"]


def test_same_requirements_give_the_same_shape() -> None:
    a = TaskRequest.parse({"task_type": "x", "requires_external_network": True, "min_gpus": 1})
    b = TaskRequest.parse({"task_type": "y", "requires": [EXTERNAL_NETWORK], "min_gpus": 1.0})
    assert a.shape() == b.shape()
    assert a.task_id != b.task_id


def test_parses_json_text_and_models() -> None:
    text = json.dumps({"task_type": "t", "organ_id": "vision", "timeout_s": 5, "data": {"k": 1}})
    task = TaskRequest.parse(text)
    assert task.organ_id == "vision" and task.timeout_s == 5.0 and task.data == {"k": 1}
    assert TaskRequest.parse(task) is task


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "task_type"),
        ({"task_type": ""}, "task_type"),
        ({"task_type": "t", "min_gpus": "1"}, "min_gpus"),
        ({"task_type": "t", "min_gpus": -1}, "min_gpus"),
        ({"task_type": "t", "timeout_s": 0}, "timeout_s"),
        ({"task_type": "t", "timeout_s": float("inf")}, "timeout_s"),
        ({"task_type": "t", "required_skills": "ocr"}, "required_skills"),
        ({"task_type": "t", "required_skills": [""]}, "required_skills"),
        ({"task_type": "t", "required_models": [1]}, "required_models"),
        ({"task_type": "t", "requires": [None]}, "requires"),
        ({"task_type": "t", "requires_external_network": "yes"}, "requires_external_network"),
        ({"task_type": "t", "organ_id": ""}, "organ_id"),
        ({"task_type": "t", "data": {"s": {1, 2}}}, "data"),
        ({"task_type": "t", "data": [1]}, "data"),
        ({"task_type": "t", "priority": 3}, "priority"),
        ("not json", "<task>"),
        ("[1, 2]", "<task>"),
        (42, "<task>"),
    ],
)
def test_malformed_task_names_the_field(raw: Any, field: str) -> None:
    with pytest.raises(InvalidTask) as err:
        TaskRequest.parse(raw)
    assert err.value.field == field
    assert field in str(err.value)


class _GraphThatMustNotBeAsked:
    """Proves validation happens before routing: any graph call fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the graph was asked ({name}) for a malformed task")


def test_router_rejects_a_malformed_task_before_touching_the_graph() -> None:
    router = Router(_GraphThatMustNotBeAsked())  # type: ignore[arg-type]
    with pytest.raises(InvalidTask) as err:
        router.route({"task_type": "t", "min_gpus": "lots"})
    assert err.value.field == "min_gpus"
    with pytest.raises(InvalidTask):
        router.execute({"required_skills": ["x"]})
    assert not issubclass(InvalidTask, NoQualifiedAgent)
