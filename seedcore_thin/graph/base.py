"""What every backend shares: named queries in, validated specs out. A backend only says how
to execute one statement and how to apply schema DDL; everything else lives here once."""

from __future__ import annotations

import contextlib
import gc
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, Self

from seedcore_thin import queries, specs
from seedcore_thin.graph.schema import SchemaChange, is_write, parse_schema_statement

log = logging.getLogger(__name__)

Row = dict[str, Any]

# The value lists of list_agent_specs.cypher's 'optional' part, after the node.
_OPTIONAL_COLUMNS = ("namespace", "entrypoint", "params", "runtime_env")
_NO_OPTIONAL = dict.fromkeys(_OPTIONAL_COLUMNS)
_RELATED = ("organ_ids", "skills", "models", "services", "policies")


def agent_rows_from_parts(parts: list[Row]) -> list[Row]:
    """Merge list_agent_specs' parts into one row per agent, as ``specs.agent_spec_from_row``
    reads it, in the order of the 'agents' part (by id).

    Parts are keyed by the node's internal id, as an Agent's ``id`` may be missing. An agent
    related twice to the same organ or skill gets it once (the old ``collect(DISTINCT)``)."""
    agents: list[list[Any]] = []
    optional: dict[int, Row] = {}
    related: dict[str, dict[int, list[Any]]] = {name: {} for name in _RELATED}
    for part in parts:
        kind, key, members = part["part"], part["key"], part["members"]
        if kind == "agents":
            agents = members
        elif kind == "optional":
            optional = {
                node: dict(zip(_OPTIONAL_COLUMNS, rest, strict=True)) for node, *rest in members
            }
        elif key is not None:  # a null name is no name (collect() skipped it before)
            lists = related[kind]
            for node in members:
                names = lists.setdefault(node, [])
                if key not in names:
                    names.append(key)
    organs, skills, models, services, policies = related.values()
    return [
        # the 'agents' part's values in the query's order, node first; one dict literal takes
        # half the time of dict(zip(names, values)) at 100,000 agents
        {
            "agent_id": values[1],
            "name": values[2],
            "lifetime": values[3],
            "num_cpus": values[4],
            "num_gpus": values[5],
            "memory_mb": values[6],
            "custom_resources_json": values[7],
            "max_concurrency": values[8],
            "metadata_json": values[9],
            "placement": values[10],
            **(optional.get(values[0]) or _NO_OPTIONAL),
            "organ_ids": organs.get(values[0]) or [],
            "skills": skills.get(values[0]) or [],
            "models": models.get(values[0]) or [],
            "services": services.get(values[0]) or [],
            "policies": policies.get(values[0]) or [],
        }
        for values in agents
    ]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing and validating 10,000 rows allocates about a million small containers, whose
    cyclic collections walk every live object: pausing it took such a read from 0.8 s to
    0.3 s. The rows hold no cycles, so reference counting frees them all."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class GraphClient(ABC):
    """The desired-state graph as the runtime reads and writes it (FalkorDB or Neo4j)."""

    @abstractmethod
    def _execute(self, statement: str, params: Mapping[str, Any], *, write: bool) -> list[Row]:
        """Run one statement; reads may go to replicas, writes must not."""

    def _apply_schema(self, statement: str, change: SchemaChange) -> None:
        """Apply one constraint or index declared in Neo4j syntax (as written, by default)."""
        self._execute(statement, {}, write=True)

    @abstractmethod
    def close(self) -> None: ...

    def run(self, query_name: str, **params: Any) -> list[Row]:
        """Execute ``cypher/queries/QUERY_NAME.cypher`` with bind parameters."""
        text = queries.cypher(query_name)
        with _gc_paused():
            return self._execute(text, params, write=is_write(text))

    def execute_statement(
        self, statement: str, params: Mapping[str, Any] | None = None
    ) -> list[Row]:
        """Run one statement from a versioned file (migration, fixture), adapting schema DDL."""
        if (change := parse_schema_statement(statement)) is not None:
            self._apply_schema(statement, change)
            return []
        return self._execute(statement, params or {}, write=is_write(statement))

    def agent_spec_rows(self, agent_id: str | None = None) -> list[Row]:
        """One row per Agent node (or for the one ``agent_id`` names), by id, with its
        properties and related organ ids, skills, models, services and direct policies."""
        with _gc_paused():
            if agent_id is None:
                return agent_rows_from_parts(self.run("list_agent_specs"))
            return agent_rows_from_parts(self.run("agent_spec", agent_id=agent_id))

    def read_agent_specs(self) -> specs.SpecReadResult:
        """Valid specs and, separately, a report per problem of each invalid Agent node."""
        with _gc_paused():
            result = specs.agent_specs_from_rows(self.agent_spec_rows())
        for problem in result.invalid:
            log.warning("invalid agent spec in the graph: %s", problem)
        return result

    def list_agent_specs(self) -> list[specs.AgentSpec]:
        """The valid agent specs, by id (invalid nodes are logged; see read_agent_specs)."""
        return self.read_agent_specs().valid

    def list_organ_specs(self) -> list[specs.OrganSpec]:
        return [specs.organ_spec_from_row(row) for row in self.run("list_organ_specs")]

    def version(self) -> int:
        """The desired-state version: changes whenever a desired-state command wrote."""
        rows = self.run("desired_state_version")
        return int(rows[0]["version"]) if rows else 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
