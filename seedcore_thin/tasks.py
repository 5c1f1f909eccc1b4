"""What a caller asks an agent to do: the pydantic ``TaskRequest``, validated before routing.

A malformed task must fail at the door with an error naming the field
(:class:`~seedcore_thin.errors.InvalidTask`), never half-way through routing or inside an
actor. Validation is strict: a number sent as a string or an unknown field is an error, not
a guess, because a mistyped ``requires`` could otherwise slip past a policy guardrail.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from seedcore_thin.errors import InvalidTask

#: The capability ``requires_external_network=True`` adds (the original design's flag).
EXTERNAL_NETWORK = "external_network"

#: A routing-relevant summary of a task: tasks with the same shape get the same candidates.
TaskShape = tuple[tuple[str, ...], tuple[str, ...], str | None, float, tuple[str, ...]]


def _clean_names(value: Any) -> Any:
    """Sorted, de-duplicated, stripped names; order never changes who qualifies."""
    if not isinstance(value, list | tuple):
        return value  # let the declared type report the error
    cleaned: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise ValueError("must be a list of strings")
        name = item.strip()
        if not name:
            raise ValueError("names must not be empty")
        cleaned.add(name)
    return sorted(cleaned)


class TaskRequest(BaseModel):
    """One task: what it needs from an agent, and the payload the agent receives."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    task_type: str = Field(min_length=1, max_length=200)
    task_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=200)
    required_skills: list[str] = Field(default_factory=list)
    required_models: list[str] = Field(default_factory=list)
    organ_id: str | None = Field(default=None, min_length=1)
    requires_external_network: bool = False
    requires: list[str] = Field(default_factory=list)
    min_gpus: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    data: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, le=86_400, allow_inf_nan=False)

    @field_validator("required_skills", "required_models", "requires", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _clean_names(value)

    @field_validator("data")
    @classmethod
    def _data_is_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        """The payload crosses process boundaries (Ray, logs, the CLI): it must be JSON."""
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serialisable: {exc}") from None
        return value

    @classmethod
    def parse(cls, raw: TaskRequest | Mapping[str, Any] | str | bytes) -> TaskRequest:
        """A task from a model, a dict or JSON text; InvalidTask names the first bad field."""
        if isinstance(raw, TaskRequest):
            return raw
        try:
            if isinstance(raw, str | bytes):
                return cls.model_validate_json(raw)
            if not isinstance(raw, Mapping):
                raise InvalidTask("<task>", f"expected an object, got {type(raw).__name__}")
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            raise invalid_task(exc) from None

    @property
    def requirements(self) -> list[str]:
        """Every capability the task needs, matched against each policy's ``forbids``."""
        needed = set(self.requires)
        if self.requires_external_network:
            needed.add(EXTERNAL_NETWORK)
        return sorted(needed)

    def shape(self) -> TaskShape:
        """What routing depends on; the router caches candidates per shape."""
        return (
            tuple(self.required_skills),
            tuple(self.required_models),
            self.organ_id,
            float(self.min_gpus),
            tuple(self.requirements),
        )

    def route_params(self) -> dict[str, Any]:
        """Bind parameters of ``route_candidates`` and ``route_explain``."""
        return shape_params(self.shape())

    def payload(self) -> dict[str, Any]:
        """What the agent's ``execute`` receives (plain JSON types)."""
        body = self.model_dump(mode="json")
        body["requires"] = self.requirements
        return body


def shape_params(shape: TaskShape) -> dict[str, Any]:
    """Bind parameters for a task shape (see ``cypher/queries/route_candidates.cypher``)."""
    skills, models, organ_id, min_gpus, requires = shape
    return {
        "skills": list(skills),
        "models": list(models),
        "organ_id": organ_id,
        "min_gpus": float(min_gpus) if math.isfinite(min_gpus) else 0.0,
        "requires": list(requires),
    }


def invalid_task(exc: ValidationError) -> InvalidTask:
    """The first pydantic error as an InvalidTask naming the field (dotted path)."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "<task>"
    message = first.get("msg", "invalid value")
    return InvalidTask(field, message)
