"""What an agent and an organ should be: pydantic specs, and reports for graph nodes that fail.

The graph is edited by people, so reading it must never let one bad node hide the others:
:func:`agent_specs_from_rows` turns query rows into valid :class:`AgentSpec` objects and, in a
separate list, :class:`InvalidSpecReport` entries naming the agent, the graph property and the
reason.

Resources follow the graph model, where maps are not allowed as property values: memory is
``memory_mb`` (mebibytes; Ray's ``memory`` option wants bytes, see
:attr:`Resources.memory_bytes`), custom resources are a JSON object string in the graph
(``custom_resources_json``) and a ``dict`` here.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seedcore_thin.agent import ENTRYPOINT_RE
from seedcore_thin.errors import InvalidSpec

#: Ids are used as Ray actor names and graph keys: short, printable, no whitespace.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$"
_MIB = 1024 * 1024

Identifier = Field(pattern=ID_PATTERN)


def _names(value: Any) -> Any:
    """Sorted, de-duplicated names: order in the graph carries no meaning."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("must be a list of strings")
        return sorted({item for item in value if item})
    return value


class Resources(BaseModel):
    """Ray resources of one actor; all flat so they map onto graph properties one to one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # strict: a number stored as a string in the graph would silently break routing filters
    num_cpus: float = Field(default=1.0, ge=0, allow_inf_nan=False, strict=True)
    num_gpus: float = Field(default=0.0, ge=0, allow_inf_nan=False, strict=True)
    memory_mb: int | None = Field(default=None, ge=0, strict=True)
    custom: dict[str, float] = Field(default_factory=dict, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _accept_ray_memory_bytes(cls, data: Any) -> Any:
        """Ray spells memory in bytes as ``memory``; we keep mebibytes, rounded up."""
        if isinstance(data, Mapping) and "memory" in data:
            data = dict(data)
            memory = data.pop("memory")
            if memory is not None:
                if isinstance(memory, bool) or not isinstance(memory, int | float):
                    raise ValueError("memory must be a number of bytes")
                if memory < 0:
                    raise ValueError("memory must be >= 0 bytes")
                data.setdefault("memory_mb", math.ceil(memory / _MIB))
        return data

    @field_validator("custom")
    @classmethod
    def _custom_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if not name or amount < 0 or not math.isfinite(amount):
                raise ValueError(f"custom resource {name!r} must be a finite amount >= 0")
        return dict(sorted(value.items()))

    @property
    def memory_bytes(self) -> int | None:
        """What Ray's ``memory=`` option expects."""
        return None if self.memory_mb is None else self.memory_mb * _MIB


#: Spec fields added after the first release: they hash only when set (see spec_hash).
_LATER_FIELDS = ("services", "entrypoint", "params", "runtime_env")

#: The ``runtime_env`` keys an agent may set (Ray's names; see docs/agents.md).
RUNTIME_ENV_KEYS = frozenset(
    {"working_dir", "py_modules", "pip", "uv", "conda", "env_vars", "excludes", "config"}
)


class AgentSpec(BaseModel):
    """One agent that should exist. ``namespace=None`` means the runtime's namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str = Identifier
    organ_id: str = Identifier
    skills: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    policies: list[str] = Field(default_factory=list)
    namespace: str | None = Field(default=None, min_length=1)
    lifetime: Literal["detached", "non_detached"] = "detached"
    name: str | None = Field(default=None, min_length=1)
    max_concurrency: int = Field(default=1, ge=1, strict=True)
    entrypoint: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _policies_from_metadata(cls, data: Any) -> Any:
        """The original design wrote ``metadata={"policies": "a,b"}``; fold it into the list."""
        if not isinstance(data, Mapping):
            return data
        metadata = data.get("metadata")
        if isinstance(metadata, Mapping) and "policies" in metadata:
            data = dict(data)
            rest = dict(metadata)
            legacy = _names(rest.pop("policies"))
            if not isinstance(legacy, list):
                raise ValueError("metadata.policies must be a comma-separated string or list")
            data["metadata"] = rest
            data["policies"] = [*list(_names(data.get("policies") or [])), *legacy]
        return data

    @field_validator("skills", "models", "services", "policies", mode="before")
    @classmethod
    def _normalise_names(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("metadata", "params", "runtime_env")
    @classmethod
    def _is_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        """These are stored as JSON strings in the graph, so they must serialise."""
        try:
            json.dumps(value, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serialisable: {exc}") from None
        return value

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint_shape(cls, value: str | None) -> str | None:
        if value is not None and not ENTRYPOINT_RE.match(value):
            raise ValueError(f"{value!r} is not 'package.module:ClassName'")
        return value

    @field_validator("runtime_env")
    @classmethod
    def _runtime_env_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Only the runtime_env fields Ray documents for shipping code and settings."""
        unknown = sorted(set(value) - RUNTIME_ENV_KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(RUNTIME_ENV_KEYS)}")
        env_vars = value.get("env_vars", {})
        if not isinstance(env_vars, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
        ):
            raise ValueError("env_vars must map strings to strings")
        return value

    def spec_hash(self) -> str:
        """sha256 over everything that needs a new actor when it changes.

        Metadata is left out on purpose: it is informational and changing it must not
        restart an agent. A field added later (services, entrypoint, params, runtime_env)
        counts only when set, so upgrading does not replace every running agent.
        """
        unset = {name for name in _LATER_FIELDS if not getattr(self, name)}
        material = self.model_dump(mode="json", exclude={"metadata"} | unset)
        blob = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def upsert_params(self) -> dict[str, Any]:
        """One map of ``cypher/queries/upsert_agents.cypher``'s ``$agents`` (flat: no maps)."""
        return {
            "agent_id": self.agent_id,
            "organ_id": self.organ_id,
            "name": self.name,
            "namespace": self.namespace,
            "lifetime": self.lifetime,
            "num_cpus": float(self.resources.num_cpus),
            "num_gpus": float(self.resources.num_gpus),
            "memory_mb": self.resources.memory_mb,
            "custom_resources_json": json.dumps(self.resources.custom, sort_keys=True),
            "max_concurrency": self.max_concurrency,
            "metadata_json": json.dumps(self.metadata, sort_keys=True),
            "entrypoint": self.entrypoint,
            "params": json.dumps(self.params, sort_keys=True) if self.params else None,
            "runtime_env": (
                json.dumps(self.runtime_env, sort_keys=True) if self.runtime_env else None
            ),
            "skills": list(self.skills),
            "models": list(self.models),
            "services": list(self.services),
            "policies": list(self.policies),
        }


class OrganSpec(BaseModel):
    """A group of agents: the skills it provides, services it uses, policies over it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organ_id: str = Identifier
    provides_skills: list[str] = Field(default_factory=list)
    uses_services: list[str] = Field(default_factory=list)
    governed_by_policies: list[str] = Field(default_factory=list)

    @field_validator("provides_skills", "uses_services", "governed_by_policies", mode="before")
    @classmethod
    def _normalise_names(cls, value: Any) -> Any:
        return _names(value)


class PolicySpec(BaseModel):
    """A guardrail as data: the capabilities a task may not require under this policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_id: str = Identifier
    kind: str = "custom"
    description: str = ""
    forbids: list[str] = Field(default_factory=list)

    @field_validator("forbids", mode="before")
    @classmethod
    def _normalise_names(cls, value: Any) -> Any:
        return _names(value)


@dataclass(frozen=True)
class InvalidSpecReport:
    """One reason one graph node is not a valid spec; ``field`` is the graph property."""

    agent_id: str | None
    field: str
    reason: str

    def as_error(self) -> InvalidSpec:
        return InvalidSpec(self.agent_id, self.field, self.reason)

    def __str__(self) -> str:
        return str(self.as_error())


@dataclass(frozen=True)
class SpecReadResult:
    """Valid specs and, separately, the reports of the invalid ones."""

    valid: list[AgentSpec] = field(default_factory=list)
    invalid: list[InvalidSpecReport] = field(default_factory=list)


# Where a pydantic error location points in the graph (the property a DBA must fix).
_GRAPH_PROPERTY = {
    "agent_id": "id",
    "organ_id": "MEMBER_OF",
    "skills": "HAS_SKILL",
    "models": "USES",
    "services": "USES_SERVICE",
    "policies": "GOVERNED_BY",
    "metadata": "metadata_json",
    "custom": "custom_resources_json",
}


def _graph_field(loc: tuple[int | str, ...]) -> str:
    names = [str(part) for part in loc if isinstance(part, str) and part != "resources"]
    if not names:
        return "<node>"
    return _GRAPH_PROPERTY.get(names[0], names[0])


def _json_object(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Decode a ``*_json`` property; ``None`` or empty means an empty object."""
    if raw is None or raw == "":
        return {}, None
    if not isinstance(raw, str):
        return None, f"must be a JSON object string, got {type(raw).__name__}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc.msg})"
    if not isinstance(value, dict):
        return None, f"must be a JSON object, got {type(value).__name__}"
    return value, None


def agent_spec_from_row(row: Mapping[str, Any]) -> AgentSpec | list[InvalidSpecReport]:
    """One ``list_agent_specs`` row -> a spec, or every reason it is not one."""
    raw_id = row.get("agent_id")
    agent_id = None if raw_id is None else str(raw_id)
    problems: list[InvalidSpecReport] = []
    custom, reason = _json_object(row.get("custom_resources_json"))
    if reason:
        problems.append(InvalidSpecReport(agent_id, "custom_resources_json", reason))
    decoded: dict[str, dict[str, Any]] = {}
    for prop in ("metadata_json", "params", "runtime_env"):
        value, reason = _json_object(row.get(prop))
        decoded[prop] = value or {}
        if reason:
            problems.append(InvalidSpecReport(agent_id, prop, reason))
    if raw_id is None:
        hint = f"name={row['name']!r}" if row.get("name") else "no name either"
        problems.append(InvalidSpecReport(None, "id", f"the Agent node has no id ({hint})"))
        raw_id = "missing-id"  # keep validating so every other problem is reported too
    organ_ids = row.get("organ_ids") or []
    if len(organ_ids) != 1:
        problems.append(
            InvalidSpecReport(
                agent_id,
                "MEMBER_OF",
                f"an agent belongs to exactly one organ, found {len(organ_ids)}",
            )
        )
    resources = {
        key: row.get(key)
        for key in ("num_cpus", "num_gpus", "memory_mb")
        if row.get(key) is not None
    }
    data: dict[str, Any] = {
        "agent_id": raw_id,
        "organ_id": organ_ids[0] if len(organ_ids) == 1 else "unknown",
        "skills": row.get("skills") or [],
        "models": row.get("models") or [],
        "services": row.get("services") or [],
        "policies": row.get("policies") or [],
        "resources": {**resources, "custom": custom or {}},
        "metadata": decoded["metadata_json"],
        "params": decoded["params"],
        "runtime_env": decoded["runtime_env"],
    }
    for key in ("namespace", "lifetime", "name", "max_concurrency", "entrypoint"):
        if row.get(key) is not None:
            data[key] = row[key]
    try:
        spec = AgentSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(InvalidSpecReport(agent_id, _graph_field(err["loc"]), err["msg"]))
        return problems
    return problems or spec


def agent_specs_from_rows(rows: Iterable[Mapping[str, Any]]) -> SpecReadResult:
    """Validate every row independently: one bad node never hides the others."""
    result = SpecReadResult()
    for row in rows:
        outcome = agent_spec_from_row(row)
        if isinstance(outcome, AgentSpec):
            result.valid.append(outcome)
        else:
            result.invalid.extend(outcome)
    return result


def organ_spec_from_row(row: Mapping[str, Any]) -> OrganSpec:
    """One ``list_organ_specs`` row -> an organ spec (raises ``InvalidSpec``)."""
    try:
        return OrganSpec.model_validate(
            {
                "organ_id": row.get("organ_id"),
                "provides_skills": row.get("provides_skills") or [],
                "uses_services": row.get("uses_services") or [],
                "governed_by_policies": row.get("governed_by_policies") or [],
            }
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidSpec(
            f"organ {row.get('organ_id')}", ".".join(str(p) for p in err["loc"]), err["msg"]
        ) from None
