"""What an agent, an organ and a policy should be (pydantic), and reports on graph nodes that fail.

People edit the graph, so one bad node must never hide the others, and no property value may
escape as an exception: :func:`agent_specs_from_rows` returns the valid specs and an
:class:`InvalidSpecReport` per problem, naming the agent and the graph property. The graph
allows no map as a property value, so resources are flat (custom ones a JSON string).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import to_json

from seedcore_thin.agent import ENTRYPOINT_RE
from seedcore_thin.errors import InvalidSpec

_MIB = 1024 * 1024


def _split(value: Any) -> Any:
    """``"a, b"`` is a list of names too."""
    return [part.strip() for part in value.split(",")] if isinstance(value, str) else value


def _tidy(names: list[str]) -> list[str]:
    """Sorted, without duplicates or "": order in the graph carries no meaning."""
    if len(names) == 1 and names[0]:  # the common case: nothing to sort
        return names
    return sorted(set(names) - {""})


def _names(value: Any) -> Any:
    """Tidy names; anything that is not strings is left for pydantic to report."""
    value = _split(value)
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return _tidy(list(value))
    return value


def _sorted_names(value: Any, handler: ValidatorFunctionWrapHandler) -> list[str]:
    """:func:`_names` around pydantic's own checks of each name (in Rust, so a valid list
    costs one Python call)."""
    return _tidy(handler(_split(value)))


#: Ids are Ray actor names and graph keys: short, printable, no whitespace.
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$")]
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
#: Names and labels: no control characters (nor, as pydantic checks, lone surrogates).
Text = Annotated[str, Field(min_length=1, pattern=_NO_CONTROL)]
#: A list of names; "" is allowed in, as it is dropped (like ``"a,,b"``'s empty part).
Names = Annotated[list[Annotated[str, Field(pattern=_NO_CONTROL)]], WrapValidator(_sorted_names)]


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
                if type(memory) not in (int, float) or not 0 <= memory < math.inf:
                    raise ValueError("memory must be a finite number of bytes >= 0")
                data.setdefault("memory_mb", math.ceil(memory / _MIB))
        return data

    @field_validator("custom")
    @classmethod
    def _custom_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            return value
        for name, amount in value.items():
            if not name or amount < 0 or not math.isfinite(amount):
                raise ValueError(f"custom resource {name!r} must be a finite amount >= 0")
        return dict(sorted(value.items()))

    @property
    def memory_bytes(self) -> int | None:
        """What Ray's ``memory=`` option expects."""
        return None if self.memory_mb is None else self.memory_mb * _MIB


def _check_json(value: Any) -> None:
    """Raise ValueError unless ``value`` dumps as strict JSON, here and by pydantic for Ray."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()  # no lone surrogate
        to_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"must be JSON-serialisable: {exc}") from None


def _entrypoint_shape(value: str) -> str:
    if not ENTRYPOINT_RE.match(value):
        raise ValueError(f"{value[:100]!r} is not 'package.module:ClassName'")
    return value


#: Spec fields stored in the graph as they are: properties, or names of related nodes.
_AS_IS = {"skills", "models", "services", "policies", "max_concurrency", "entrypoint"}
_AS_IS |= {"namespace", "lifetime", "name", "placement"}
#: Spec fields added after the first release: they hash only when not at their default (see
#: spec_hash), so an upgrade moves no existing hash.
_LATER_FIELDS = ("services", "entrypoint", "params", "runtime_env", "placement")

#: The ``runtime_env`` keys an agent may set (Ray's names; see docs/agents.md).
RUNTIME_ENV_KEYS = frozenset(
    {"working_dir", "py_modules", "pip", "uv", "conda", "env_vars", "excludes", "config"}
)


class AgentSpec(BaseModel):
    """One agent that should exist. ``namespace=None`` means the runtime's namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: Id
    organ_id: Id
    skills: Names = []
    models: Names = []
    services: Names = []
    resources: Resources = Field(default_factory=Resources)
    policies: Names = []
    namespace: Text | None = None
    lifetime: Literal["detached", "non_detached"] = "detached"
    name: Text | None = None
    max_concurrency: int = Field(default=1, ge=1, strict=True)
    #: ``dedicated``: a Ray actor of its own; ``pooled``: one of many in a shared host actor.
    placement: Literal["dedicated", "pooled"] = "dedicated"
    #: None skips the shape check without a Python call (most agents have no entrypoint).
    entrypoint: Annotated[str, AfterValidator(_entrypoint_shape)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _policies_from_metadata(cls, data: Any) -> Any:
        """The original design wrote ``metadata={"policies": "a,b"}``; fold it into the list."""
        metadata = data.get("metadata") if isinstance(data, Mapping) else None
        if not isinstance(metadata, Mapping) or "policies" not in metadata:
            return data
        rest = dict(metadata)
        legacy = _names(rest.pop("policies"))
        if not isinstance(legacy, list) or not all(isinstance(p, str) for p in legacy):
            raise ValueError("metadata.policies must be a comma-separated string or list")
        own = _names(data.get("policies") or [])
        policies = [*own, *legacy] if isinstance(own, list) else own
        return {**data, "metadata": rest, "policies": policies}

    @field_validator("metadata", "params")
    @classmethod
    def _is_json(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """JSON strings in the graph, and dumped by pydantic (depth-limited) for Ray."""
        # most agents have no params; a graph row's were checked already
        if value and info.context is not _JSON_CHECKED:
            _check_json(value)
        return value

    @field_validator("runtime_env")
    @classmethod
    def _runtime_env_keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """JSON (as ``_is_json``), and only the fields Ray documents for shipping code and
        settings. One validator, not two: most agents have none, and each call costs."""
        if not value:
            return value
        if info.context is not _JSON_CHECKED:
            _check_json(value)
        if unknown := sorted(set(value) - RUNTIME_ENV_KEYS):
            raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(RUNTIME_ENV_KEYS)}")
        env_vars = value.get("env_vars", {})
        if not isinstance(env_vars, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
        ):
            raise ValueError("env_vars must map strings to strings")
        return value

    def spec_hash(self) -> str:
        """sha256 over everything that needs a new actor when it changes: not the metadata
        (informational), and a field added later only when not at its default (so an upgrade
        does not replace every running agent)."""
        fields = type(self).model_fields
        unset = {
            name
            for name in _LATER_FIELDS
            if getattr(self, name) == fields[name].get_default(call_default_factory=True)
        }
        material = self.model_dump(mode="json", exclude={"metadata"} | unset)
        blob = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def upsert_params(self) -> dict[str, Any]:
        """One map of ``cypher/queries/upsert_agents.cypher``'s ``$agents`` (flat: no maps)."""
        return {
            **self.model_dump(include={"agent_id", "organ_id", *_AS_IS}),
            **self.resources.model_dump(exclude={"custom"}),
            "custom_resources_json": json.dumps(self.resources.custom, sort_keys=True),
            "metadata_json": json.dumps(self.metadata, sort_keys=True),
            "params": json.dumps(self.params, sort_keys=True) if self.params else None,
            "runtime_env": (
                json.dumps(self.runtime_env, sort_keys=True) if self.runtime_env else None
            ),
        }


class OrganSpec(BaseModel):
    """A group of agents: the skills it provides, services it uses, policies over it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organ_id: Id
    provides_skills: Names = []
    uses_services: Names = []
    governed_by_policies: Names = []


class PolicySpec(BaseModel):
    """A guardrail as data: the capabilities a task may not require under this policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_id: Id
    kind: str = "custom"
    description: str = ""
    forbids: Names = []


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


def _graph_property(loc: tuple[int | str, ...]) -> str:
    names = [part for part in loc if isinstance(part, str) and part != "resources"]
    # the one check of a whole spec is the original design's policies in metadata
    return _GRAPH_PROPERTY.get(names[0], names[0]) if names else "metadata_json"


def _readable(value: Any) -> str | None:
    """An id or a name as a report shows it: short and printable; None if not a scalar."""
    if isinstance(value, float) or (type(value) is int and value.bit_length() < 64):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value if value.isprintable() else repr(value)[1:-1]
    return text if len(text) <= 100 else text[:97] + "..."


def _json_object(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Decode a JSON-string property; ``None`` or empty means an empty object."""
    if raw is None or raw == "" or raw == "{}":
        return {}, None
    if not isinstance(raw, str):
        return {}, f"must be a JSON object string, got {type(raw).__name__}"
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or a huge integer
        return {}, f"is not valid JSON ({getattr(exc, 'msg', exc)})"
    if not isinstance(value, dict):
        return {}, f"must be a JSON object, got {type(value).__name__}"
    return value, None


#: Validation context of a row whose JSON objects passed ``_check_json`` already.
_JSON_CHECKED = {"json_checked": True}
_JSON_PROPERTIES = ("custom_resources_json", "metadata_json", "params", "runtime_env")
_RESOURCE_PROPERTIES = ("num_cpus", "num_gpus", "memory_mb")


@functools.lru_cache(maxsize=1024)
def _json_text(raw: str) -> tuple[str | None, bool]:
    """Why JSON text ``raw`` is no object (None: it is one), and whether its object passes
    ``_check_json``. Once per distinct text, as most agents share theirs and the check costs
    more than decoding (each agent still decodes its own copy)."""
    value, reason = _json_object(raw)
    try:
        _check_json(value)
    except ValueError:
        return reason, False
    return reason, True


def agent_spec_from_row(row: Mapping[str, Any]) -> AgentSpec | list[InvalidSpecReport]:
    """One ``list_agent_specs`` row -> a spec, or every reason it is not one (never raises)."""
    raw_id = row.get("agent_id")
    problems: list[tuple[str, str]] = []
    if raw_id is None:
        name = _readable(row.get("name"))
        hint = f"name={name!r}" if name else "no name either"
        problems.append(("id", f"the Agent node has no id ({hint})"))
    organ_ids = row.get("organ_ids")
    count = len(organ_ids) if isinstance(organ_ids, list) else 0
    if count != 1:
        problems.append(("MEMBER_OF", f"an agent belongs to exactly one organ, found {count}"))
    decoded: dict[str, dict[str, Any]] = {}
    checked = True  # every decoded object passed _check_json: AgentSpec need not again
    for prop in _JSON_PROPERTIES:
        raw = row.get(prop)
        if isinstance(raw, str) and raw not in ("", "{}"):
            reason, passed = _json_text(raw)
            checked = checked and passed
            decoded[prop] = {} if reason else json.loads(raw)
        else:
            decoded[prop], reason = _json_object(raw)
        if reason:
            problems.append((prop, reason))
    resources = {k: v for k in _RESOURCE_PROPERTIES if (v := row.get(k)) is not None}
    data = {
        "agent_id": "missing-id" if raw_id is None else raw_id,  # go on: report every problem
        "organ_id": organ_ids[0] if isinstance(organ_ids, list) and count == 1 else "unknown",
        "resources": {**resources, "custom": decoded["custom_resources_json"]},
        "metadata": decoded["metadata_json"],
        "params": decoded["params"],
        "runtime_env": decoded["runtime_env"],
        **{key: value for key in _AS_IS if (value := row.get(key)) is not None},
    }
    try:
        spec = AgentSpec.model_validate(data, context=_JSON_CHECKED if checked else None)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        problems += [(_graph_property(err["loc"]), err["msg"]) for err in errors]
    else:
        if not problems:
            return spec
    agent_id = _readable(raw_id)  # one report per distinct problem (a list may repeat one)
    return [InvalidSpecReport(agent_id, prop, reason) for prop, reason in dict.fromkeys(problems)]


def agent_specs_from_rows(rows: Iterable[Mapping[str, Any]]) -> SpecReadResult:
    """Validate every row independently: one bad node never hides the others."""
    result = SpecReadResult()
    for outcome in map(agent_spec_from_row, rows):
        if isinstance(outcome, AgentSpec):
            result.valid.append(outcome)
        else:
            result.invalid.extend(outcome)
    return result


def organ_spec_from_row(row: Mapping[str, Any]) -> OrganSpec:
    """One ``list_organ_specs`` row -> an organ spec (raises ``InvalidSpec``)."""
    try:
        return OrganSpec.model_validate(row)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"])
        raise InvalidSpec(f"organ {row.get('organ_id')}", loc, err["msg"]) from None
