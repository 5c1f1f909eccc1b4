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

    def read_agent_specs(self) -> specs.SpecReadResult:
        """Valid specs and, separately, a report per problem of each invalid Agent node."""
        with _gc_paused():
            result = specs.agent_specs_from_rows(self.run("list_agent_specs", agent_id=None))
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
