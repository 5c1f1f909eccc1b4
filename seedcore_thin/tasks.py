"""What a caller asks an agent to do: the pydantic ``TaskRequest``, validated before routing.

A malformed task must fail at the door with an error naming the field
(:class:`~seedcore_thin.errors.InvalidTask`), never half-way through routing or inside an
actor. Validation is strict: a number sent as a string or an unknown field is an error, not
a guess, because a mistyped ``requires`` could otherwise slip past a policy guardrail.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from seedcore_thin.errors import InvalidTask

#: The capability ``requires_external_network=True`` adds (the original design's flag).
EXTERNAL_NETWORK = "external_network"

#: Limits on one task (docs/routing.md, "Limits"): a bigger task is refused, not truncated.
MAX_NAME_CHARS = 200  # task_type, task_id, organ_id and each name in a list
MAX_NAMES = 100  # items in required_skills, required_models, requires
MAX_DATA_DEPTH = 32  # objects and arrays nested in ``data`` (``data`` itself is level 1)
MAX_DATA_BYTES = 1 << 20  # ``data`` as compact UTF-8 JSON
MAX_TASK_BYTES = 2 * MAX_DATA_BYTES  # a task given as JSON text (the CLI reads no more)

#: What no database, log or terminal takes in a name: control characters (C0, DEL, C1)
#: and lone surrogates (``json.loads`` makes them from a ``\ud83d`` escape; UTF-8 cannot).
_BAD_NAME_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _guarded(check: Callable[..., Any]) -> Callable[..., Any]:
    """A hostile value may break a check in unforeseen ways: that is a bad value too."""

    def run(value: Any, *args: Any) -> Any:
        try:
            return check(value, *args)
        except ValueError:
            raise
        except Exception as exc:  # RecursionError, OverflowError, a broken __eq__, ...
            raise ValueError(f"cannot be checked ({type(exc).__name__})") from None

    return run


@_guarded
def _check_name(value: str, what: str = "name") -> str:
    """``value`` unchanged, or ValueError when it is too long or has a forbidden character."""
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"{what} longer than {MAX_NAME_CHARS} characters")
    if bad := _BAD_NAME_CHAR.search(value):
        kind = "a lone surrogate" if "\ud800" <= bad[0] <= "\udfff" else "a control character"
        raise ValueError(f"{what} contains {kind} (U+{ord(bad[0]):04X}) at position {bad.start()}")
    return value


@_guarded
def _clean_names(value: Any) -> Any:
    """Sorted, de-duplicated, stripped names; order never changes who qualifies."""
    if not isinstance(value, list | tuple):
        return value  # let the declared type report the error
    if len(value) > MAX_NAMES:
        raise ValueError(f"at most {MAX_NAMES} names, got {len(value)}")
    cleaned: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError("must be a list of strings")
        name = _check_name(item.strip(), f"name {index}")
        if not name:
            raise ValueError("names must not be empty")
        cleaned.add(name)
    return sorted(cleaned)


@_guarded
def _check_data(value: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON, as the payload crosses process boundaries (Ray, logs, the CLI): at most
    MAX_DATA_DEPTH deep and MAX_DATA_BYTES big, valid Unicode. The shape is walked with a
    stack, so depth (or a cycle) is an error, not a RecursionError; json.dumps judges values."""
    stack: list[tuple[Any, int]] = [(value, 1)]  # (value, depth of its container)
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_DATA_BYTES:  # each value takes at least one byte of JSON
            raise ValueError(f"larger than {MAX_DATA_BYTES} bytes as JSON")
        if isinstance(item, dict | list | tuple) and depth > MAX_DATA_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DATA_DEPTH} levels")
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise ValueError("object keys must be strings")
            stack += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list | tuple):
            stack += [(child, depth + 1) for child in item]
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode())  # a lone surrogate fails here
    except (TypeError, ValueError) as exc:  # NaN, an integer too long to print, a set, ...
        raise ValueError(f"must be JSON-serialisable: {exc}") from None
    if size > MAX_DATA_BYTES:
        raise ValueError(f"larger than {MAX_DATA_BYTES} bytes as JSON ({size})")
    return value


Name = Annotated[str, Field(min_length=1), AfterValidator(_check_name)]
Names = Annotated[list[str], BeforeValidator(_clean_names), Field(default_factory=list)]


class TaskRequest(BaseModel):
    """One task: what it needs from an agent, and the payload the agent receives."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    task_type: Name
    task_id: Name = Field(default_factory=lambda: uuid.uuid4().hex)
    required_skills: Names
    required_models: Names
    organ_id: Name | None = None
    requires_external_network: bool = False
    requires: Names
    min_gpus: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    data: Annotated[dict[str, Any], AfterValidator(_check_data)] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, le=86_400, allow_inf_nan=False)

    @classmethod
    def parse(cls, raw: TaskRequest | Mapping[str, Any] | str | bytes) -> TaskRequest:
        """A task from a model, a dict or JSON text; InvalidTask names the first bad field.

        Nothing a caller passes escapes as another exception: whatever cannot be validated
        is an InvalidTask (on ``<task>`` when no single field is to blame).
        """
        if isinstance(raw, TaskRequest):
            return raw
        if isinstance(raw, str | bytes | bytearray) and len(raw) > MAX_TASK_BYTES:
            raise InvalidTask("<task>", f"JSON text longer than {MAX_TASK_BYTES} bytes")
        if not isinstance(raw, str | bytes | bytearray | Mapping):
            raise InvalidTask("<task>", f"expected an object, got {type(raw).__name__}")
        try:
            if isinstance(raw, Mapping):
                return cls.model_validate(dict(raw))
            return cls.model_validate_json(raw)
        except ValidationError as exc:  # the first error, naming the field (dotted path)
            first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
            field = ".".join(str(part) for part in first["loc"]) or "<task>"
            raise InvalidTask(printable(field), printable(first["msg"], 300)) from None
        except Exception as exc:  # RecursionError in a hostile Mapping, for one
            raise InvalidTask("<task>", f"cannot be read ({type(exc).__name__})") from None

    @property
    def requirements(self) -> list[str]:
        """Every capability the task needs, matched against each policy's ``forbids``."""
        flag = [EXTERNAL_NETWORK] if self.requires_external_network else []
        return sorted({*self.requires, *flag})

    def shape(self) -> tuple[Any, ...]:
        """What routing depends on, hashable (the router caches candidates per shape); made
        from ``route_params`` so the cache key and the query cannot drift apart."""
        params = self.route_params().values()
        return tuple(tuple(v) if isinstance(v, list) else v for v in params)

    def route_params(self) -> dict[str, Any]:
        """Bind parameters of ``route_candidates`` and ``route_explain``."""
        return {
            "skills": list(self.required_skills),
            "models": list(self.required_models),
            "organ_id": self.organ_id,
            "min_gpus": float(self.min_gpus),
            "requires": self.requirements,
        }

    def payload(self) -> dict[str, Any]:
        """What the agent's ``execute`` receives (plain JSON types)."""
        return {**self.model_dump(mode="json"), "requires": self.requirements}


def printable(text: str, limit: int = 120) -> str:
    """``text`` safe for any terminal or log: escapes instead of control characters or
    lone surrogates, and cut at ``limit`` characters (a hostile key may be huge)."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return _BAD_NAME_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", cut)
