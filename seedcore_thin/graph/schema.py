"""Reading versioned Cypher files: split statements, tell reads from writes, parse schema DDL.

The files are Neo4j 5 syntax and run unchanged on both backends, except schema DDL, which
FalkorDB lacks: :func:`parse_schema_statement` turns it into a :class:`SchemaChange` that a
backend applies through its own API.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from seedcore_thin.errors import GraphQueryError

_WRITE_RE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DETACH|FOREACH|DROP)\b", re.I)
# Schema DDL is recognised by its first words; _SCHEMA_RE must then parse it.
_SCHEMA_HEAD_RE = re.compile(r"^(?:CREATE\s+(?:CONSTRAINT|INDEX|RANGE)|DROP)\b", re.I)
_SCHEMA_RE = re.compile(
    r"""^CREATE \s+ (?: (?P<constraint>CONSTRAINT) | (?:RANGE\s+)? INDEX )
    (?: \s+ (?!IF\b|FOR\b) `?(?P<name>\w+)`? )?
    (?P<if_not_exists> \s+ IF \s+ NOT \s+ EXISTS )?
    \s+ FOR \s* (?:
        \( \s* `?(?P<node>\w+)`? \s* : \s* `?(?P<label>\w+)`? \s* \)
      | \( \s* \) \s* -\[ \s* `?(?P<edge>\w+)`? \s* : \s* `?(?P<type>\w+)`? \s* \]
        \s* ->? \s* \( \s* \)
    )
    \s* (?: REQUIRE \s* (?P<required> \(? [^()]*? \)? )
            \s+ IS \s+ (?P<kind> (?P<unique>UNIQUE) | NOT\s+NULL )
          | ON \s* (?P<indexed> \( [^()]* \) ) ) \s* $""",
    re.I | re.S | re.X,
)
# A // comment, or a quoted literal or name (backslash escapes; unterminated: to the end).
_NOT_CODE_RE = re.compile(r"//[^\n]*|(['\"`])(?:\\.?|(?!\1)[^\\])*\1?", re.S)
_PROP_RE = re.compile(r"`?(\w+)`?\s*\.\s*`?(\w+)`?")


@dataclass(frozen=True)
class SchemaChange:
    """A constraint or index, independent of the DDL dialect that declared it."""

    kind: Literal["unique", "not_null", "index"]
    entity: Literal["node", "relationship"]
    label: str
    properties: tuple[str, ...]
    if_not_exists: bool
    name: str | None = None


def strip_comments(text: str) -> str:
    """Drop ``//`` comments outside string literals (keeps line structure)."""
    return _NOT_CODE_RE.sub(lambda m: "" if m[0].startswith("//") else m[0], text)


def _code_only(text: str) -> str:
    """``text`` with comments and quoted literals or names blanked: they may say anything."""
    return _NOT_CODE_RE.sub(lambda m: " " * len(m[0]), text)


def split_statements(text: str) -> list[str]:
    """Statements of a file, split on ``;`` outside string literals, comments removed."""
    code = strip_comments(text)
    cuts = [i for i, ch in enumerate(_code_only(code)) if ch == ";"]
    bounds = zip([-1, *cuts], [*cuts, len(code)], strict=True)
    return [code[a + 1 : b].strip() for a, b in bounds if code[a + 1 : b].strip()]


@functools.lru_cache(maxsize=1024)
def is_write(statement: str) -> bool:
    """True when the statement may write (decides read routing and read-only commands);
    remembered per text: blanking an 8 KB query's comments took 0.65 ms of every call."""
    return bool(_WRITE_RE.search(_code_only(statement)))


def parse_schema_statement(statement: str) -> SchemaChange | None:
    """A :class:`SchemaChange` for ``CREATE CONSTRAINT``/``CREATE INDEX``, else ``None``.

    Raises GraphQueryError for schema DDL this parser cannot translate (so a backend never
    silently skips part of a migration).
    """
    text = strip_comments(statement).strip().rstrip(";").strip()
    if not _SCHEMA_HEAD_RE.match(text):
        return None
    match = _SCHEMA_RE.match(text)
    pairs = _PROP_RE.findall(match["required"] or match["indexed"]) if match else []
    if (
        match is None
        or bool(match["constraint"]) != bool(match["kind"])  # INDEX ... REQUIRE, and the like
        or not pairs
        or any(variable != (match["node"] or match["edge"]) for variable, _ in pairs)
    ):
        raise GraphQueryError(f"unsupported schema statement: {' '.join(text.split())[:120]}")
    return SchemaChange(
        kind="index" if not match["kind"] else "unique" if match["unique"] else "not_null",
        entity="node" if match["node"] else "relationship",
        label=match["label"] or match["type"],
        properties=tuple(prop for _, prop in pairs),
        if_not_exists=bool(match["if_not_exists"]),
        name=match["name"],
    )
