"""Reading versioned Cypher files: split statements, tell reads from writes, parse schema DDL.

Migration and fixture files are written in Neo4j 5 syntax. Everything runs unchanged on both
backends except schema DDL (``CREATE CONSTRAINT`` / ``CREATE INDEX``), which FalkorDB lacks
in that form; :func:`parse_schema_statement` turns it into a :class:`SchemaChange` that a
backend can apply through its own API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_WRITE_RE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DETACH|FOREACH|DROP)\b", re.I)
_IDENT = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
# Schema DDL is recognised by its first words; the two patterns below must then parse it.
_SCHEMA_HEAD_RE = re.compile(r"^(?:CREATE\s+(?:CONSTRAINT|INDEX|RANGE)|DROP)\b", re.I)
_CONSTRAINT_RE = re.compile(
    r"^CREATE\s+CONSTRAINT(?:\s+(?!IF\b|FOR\b)" + _IDENT + r")?(?P<ine>\s+IF\s+NOT\s+EXISTS)?"
    r"\s+FOR\s*(?P<pattern>\(.*?\)(?:-\[.*?\]-(?:>)?\(\s*\))?)"
    r"\s+REQUIRE\s+(?P<props>\(?[^()]*?\)?)\s+IS\s+(?P<kind>UNIQUE|NOT\s+NULL)\s*$",
    re.I | re.S,
)
_INDEX_RE = re.compile(
    r"^CREATE\s+(?:RANGE\s+)?INDEX(?:\s+(?!IF\b|FOR\b)" + _IDENT + r")?"
    r"(?P<ine>\s+IF\s+NOT\s+EXISTS)?"
    r"\s+FOR\s*(?P<pattern>\(.*?\)(?:-\[.*?\]-(?:>)?\(\s*\))?)"
    r"\s+ON\s*(?P<props>\([^()]*\))\s*$",
    re.I | re.S,
)
_NODE_RE = re.compile(r"^\(\s*" + _IDENT + r"\s*:\s*" + _IDENT + r"\s*\)$")
_EDGE_RE = re.compile(
    r"^\(\s*\)\s*-\[\s*" + _IDENT + r"\s*:\s*" + _IDENT + r"\s*\]\s*->?\s*\(\s*\)$"
)
_PROP_RE = re.compile(_IDENT + r"\s*\.\s*" + _IDENT)


@dataclass(frozen=True)
class SchemaChange:
    """A constraint or index, independent of the DDL dialect that declared it."""

    kind: Literal["unique", "not_null", "index"]
    entity: Literal["node", "relationship"]
    label: str
    properties: tuple[str, ...]
    if_not_exists: bool
    name: str | None = None


def _scan(text: str) -> list[str]:
    """Classify each character: ``c`` code, ``s`` inside a quoted literal or name, ``#`` in a
    ``//`` comment. Quotes inside a comment and ``//`` inside a string are plain text."""
    kinds: list[str] = []
    quote: str | None = None
    escaped = comment = False
    for i, ch in enumerate(text):
        if comment:
            comment = ch != "\n"
            kinds.append("#" if comment else "c")
        elif quote:
            kinds.append("s")
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch == "/" and text.startswith("//", i):
            comment = True
            kinds.append("#")
        else:
            kinds.append("s" if ch in "'\"`" else "c")
            if ch in "'\"`":
                quote = ch
    return kinds


def strip_comments(text: str) -> str:
    """Drop ``//`` comments outside string literals (keeps line structure)."""
    return "".join(ch for ch, kind in zip(text, _scan(text), strict=True) if kind != "#")


def split_statements(text: str) -> list[str]:
    """Statements of a file, split on ``;`` outside string literals, comments removed."""
    code = strip_comments(text)
    kinds = _scan(code)
    cuts = [i for i, ch in enumerate(code) if ch == ";" and kinds[i] == "c"]
    bounds = zip([-1, *cuts], [*cuts, len(code)], strict=True)
    return [code[a + 1 : b].strip() for a, b in bounds if code[a + 1 : b].strip()]


def is_write(statement: str) -> bool:
    """True when the statement may write (decides read routing and read-only commands)."""
    return bool(_WRITE_RE.search(_without_strings(strip_comments(statement))))


def _without_strings(text: str) -> str:
    return re.sub(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", "''", text)


def _target(pattern: str) -> tuple[Literal["node", "relationship"], str, str] | None:
    compact = pattern.strip()
    node = _NODE_RE.match(compact)
    if node:
        return "node", node.group(1), node.group(2)
    edge = _EDGE_RE.match(compact)
    if edge:
        return "relationship", edge.group(1), edge.group(2)
    return None


def _properties(raw: str, variable: str) -> tuple[str, ...] | None:
    props: list[str] = []
    for match in _PROP_RE.finditer(raw):
        if match.group(1) != variable:
            return None
        props.append(match.group(2))
    return tuple(props) or None


def parse_schema_statement(statement: str) -> SchemaChange | None:
    """A :class:`SchemaChange` for ``CREATE CONSTRAINT``/``CREATE INDEX``, else ``None``.

    Raises ``ValueError`` for schema DDL this parser cannot translate (so a backend never
    silently skips part of a migration).
    """
    text = strip_comments(statement).strip().rstrip(";").strip()
    if not _SCHEMA_HEAD_RE.match(text):
        return None
    match = _CONSTRAINT_RE.match(text) or _INDEX_RE.match(text)
    if match is None:
        raise ValueError(f"unsupported schema statement: {' '.join(text.split())[:120]}")
    target = _target(match.group("pattern"))
    if target is None:
        raise ValueError(f"unsupported schema pattern: {match.group('pattern')}")
    entity, variable, label = target
    props = _properties(match.group("props"), variable)
    if props is None:
        raise ValueError(f"unsupported property list: {match.group('props')}")
    if match.re is _CONSTRAINT_RE:
        kind: Literal["unique", "not_null", "index"] = (
            "unique" if match.group("kind").upper() == "UNIQUE" else "not_null"
        )
    else:
        kind = "index"
    return SchemaChange(
        kind=kind,
        entity=entity,
        label=label,
        properties=props,
        if_not_exists=bool(match.group("ine")),
        name=match.group(1),
    )


_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(?:\s*:?\s*([A-Z]+(?:<[A-Z]+>)?))?")


def header_parameters(text: str) -> dict[str, str]:
    """``{name: TYPE}`` declared by a query file's ``// params:`` header (TYPE may be '').

    The same convention ``scripts/lint_cypher.mjs`` reads to declare parameters to Neo4j's
    linter; tests use it to call every query file with values of the declared types.
    """
    params: dict[str, str] = {}
    in_params = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("//"):
            break
        body = stripped[2:].strip()
        if re.match(r"^params:", body, re.I):
            in_params = True
        elif re.match(r"^[a-z_]+:", body, re.I):
            in_params = False
        if in_params:
            for match in _PARAM_RE.finditer(body):
                params[match.group(1)] = match.group(2) or ""
    return params
