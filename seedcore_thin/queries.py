"""Named SQL and Cypher statements, loaded from the versioned files DBAs edit.

``sql/queries.sql`` (the runtime's calls) and ``sql/setup.sql`` (the migrator's and the local
stack's) hold blocks headed ``-- name: NAME :SHAPE`` (River's convention), a one-line
description comment, then the statement; SHAPE is what a call returns: ``:one`` (the row),
``:many`` (every row), ``:scalar`` (first column of the row) or ``:exec`` (nothing).
``cypher/queries/NAME.cypher`` holds one statement per file.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from seedcore_thin.errors import QueryNotFound

SHAPES = ("one", "many", "scalar", "exec")
# A header line and the optional description line under it.
_HEADER_RE = re.compile(r"^--\s*name:(.*)\n?(?:[ \t]*--[- \t]*(.*)\n?)?", re.MULTILINE)
_NAME_SHAPE_RE = re.compile(rf"\s*([a-z_][a-z0-9_]*)\s+:({'|'.join(SHAPES)})\s*")
_PARAM_RE = re.compile(r"%\((\w+)\)s")
SQL_FILES = ("queries.sql", "setup.sql")
_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The folder holding ``sql/`` and ``cypher/``: ``SEEDCORE_ROOT`` (a deployment's edited
    copy), else the source checkout this package sits in, else the wheel's packaged copy."""
    if override := os.environ.get("SEEDCORE_ROOT"):
        return Path(override)
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "sql" / "queries.sql").is_file():
        return checkout
    return _PACKAGE_DIR / "data"


def sql_dir() -> Path:
    return project_root() / "sql"


def cypher_dir() -> Path:
    return project_root() / "cypher"


@dataclass(frozen=True)
class NamedQuery:
    """A statement of a ``-- name:`` file; ``params`` are its ``%(name)s`` placeholders."""

    description: str
    text: str
    shape: str
    params: frozenset[str]


def parse_named_sql(text: str) -> dict[str, NamedQuery]:
    """Split a ``-- name:`` file into statements; a bad header or a duplicate is an error."""
    queries: dict[str, NamedQuery] = {}
    parts = _HEADER_RE.split(text)  # preamble, then (header, description, body) triples
    for header, description, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        if (head := _NAME_SHAPE_RE.fullmatch(header)) is None:
            raise ValueError(f"bad header '-- name:{header}': write -- name: NAME :SHAPE")
        name, shape = head.groups()
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        statement = body.strip().rstrip(";").strip()
        params = frozenset(_PARAM_RE.findall(statement))
        queries[name] = NamedQuery((description or "").strip(), statement, shape, params)
    return queries


@functools.cache
def _named_sql_file(path: Path) -> dict[str, NamedQuery]:
    return parse_named_sql(path.read_text(encoding="utf-8"))


def load_sql(extra: Iterable[Path] = ()) -> dict[str, NamedQuery]:
    """The statements of ``sql/``, plus ``extra`` files (the tests' ``tests/sql/admin.sql``)."""
    merged: dict[str, NamedQuery] = {}
    for path in [*(sql_dir() / f for f in SQL_FILES), *extra]:
        for name, query in _named_sql_file(path).items():
            if merged.setdefault(name, query) is not query:
                raise ValueError(f"query {name!r} is defined twice (again in {path})")
    return merged


def sql(name: str) -> str:
    """The text of the named statement in ``sql/queries.sql`` or ``sql/setup.sql``."""
    try:
        return load_sql()[name].text
    except KeyError:
        raise QueryNotFound(f"sql/ has no query named {name!r}") from None


@functools.cache
def _cypher_file(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def cypher(name: str) -> str:
    """The text of ``cypher/queries/NAME.cypher``."""
    try:
        return _cypher_file(cypher_dir() / "queries" / f"{name}.cypher")
    except FileNotFoundError:
        raise QueryNotFound(f"cypher/queries has no file {name}.cypher") from None
