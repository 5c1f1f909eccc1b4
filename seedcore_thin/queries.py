"""Named SQL and Cypher statements, loaded from the versioned files DBAs edit.

``sql/queries.sql`` holds blocks headed ``-- name: NAME`` followed by a one-line
description comment and the statement. ``cypher/queries/NAME.cypher`` holds one statement
per file. Python never embeds query text: it asks for a statement by name.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from seedcore_thin.errors import QueryNotFound

_NAME_RE = re.compile(
    r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)(?:\s+:(?:one|many|scalar|exec))?\s*$", re.MULTILINE
)


_PACKAGE_DIR = Path(__file__).resolve().parent
#: Where the wheel carries its copy of ``sql/`` and ``cypher/`` (pyproject's force-include).
PACKAGED_ROOT = _PACKAGE_DIR / "data"


def _is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "sql" / "queries.sql").is_file()


def project_root() -> Path:
    """The folder holding ``sql/`` and ``cypher/``.

    ``SEEDCORE_ROOT`` first, so a deployment can run an edited copy; else the source
    checkout this package sits in (the files DBAs edit); else the copy an installed wheel
    carries inside the package.
    """
    override = os.environ.get("SEEDCORE_ROOT")
    if override:
        return Path(override)
    checkout = _PACKAGE_DIR.parent
    return checkout if _is_checkout(checkout) else PACKAGED_ROOT


def sql_dir() -> Path:
    return project_root() / "sql"


def cypher_dir() -> Path:
    return project_root() / "cypher"


@dataclass(frozen=True)
class NamedQuery:
    """One statement with the description its author wrote above it."""

    name: str
    description: str
    text: str


def parse_named_sql(text: str) -> dict[str, NamedQuery]:
    """Split a ``-- name:`` file into statements; a duplicate name is an error."""
    queries: dict[str, NamedQuery] = {}
    matches = list(_NAME_RE.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip("\n")
        lines = body.splitlines()
        description = ""
        if lines and lines[0].lstrip().startswith("--"):
            description = lines[0].lstrip("- ").strip()
            lines = lines[1:]
        statement = "\n".join(lines).strip().rstrip(";").strip()
        name = match.group("name")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = NamedQuery(name, description, statement)
    return queries


@functools.cache
def _sql_queries(path: Path) -> dict[str, NamedQuery]:
    return parse_named_sql(path.read_text(encoding="utf-8"))


def sql(name: str) -> str:
    """The text of the named statement in ``sql/queries.sql``."""
    queries = _sql_queries(sql_dir() / "queries.sql")
    try:
        return queries[name].text
    except KeyError:
        raise QueryNotFound(f"sql/queries.sql has no query named {name!r}") from None


def _cypher_header_description(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            return stripped.lstrip("/ ").strip()
    return ""


@functools.cache
def _cypher_query(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    return NamedQuery(path.stem, _cypher_header_description(text), text.strip().rstrip(";"))


def cypher(name: str) -> str:
    """The text of ``cypher/queries/NAME.cypher``."""
    path = cypher_dir() / "queries" / f"{name}.cypher"
    if not path.is_file():
        raise QueryNotFound(f"cypher/queries has no file {name}.cypher")
    return _cypher_query(path).text


def cypher_query_names() -> list[str]:
    """Every named Cypher statement, sorted; tests run each of them."""
    return sorted(p.stem for p in (cypher_dir() / "queries").glob("*.cypher"))
