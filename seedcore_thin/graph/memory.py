"""An in-memory graph client for users who pass specs directly (no database at all).

The original design called it ``MockGraphClient``; that name stays importable. It answers the
spec listings and the version, and the few named queries that are plain lookups over specs
(spec listings, version, agents_in_organ, agents_using_model,
upsert_agent, remove_agent). Anything that needs a real graph (routing, migrations, impact
queries over policies) raises :class:`~seedcore_thin.errors.GraphQueryError` naming the query,
so a caller never gets a silently wrong answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from seedcore_thin.errors import GraphQueryError
from seedcore_thin.specs import AgentSpec, OrganSpec, SpecReadResult, agent_spec_from_row

Row = dict[str, Any]


class MemoryGraphClient:
    """Desired state held in a dict; every change bumps :meth:`version`, like the graph."""

    backend = "memory"

    def __init__(self, agents: Iterable[AgentSpec] = (), organs: Iterable[OrganSpec] = ()) -> None:
        self._lock = threading.Lock()
        self._agents = {spec.agent_id: spec for spec in agents}
        self._organs = {organ.organ_id: organ for organ in organs}
        self._version = 1 if self._agents else 0
        self._queries: dict[str, Callable[..., list[Row]]] = {
            "list_agent_specs": self._rows_agent_specs,
            "list_organ_specs": self._rows_organ_specs,
            "desired_state_version": lambda: [{"version": self.version()}],
            "agents_in_organ": self._rows_agents_in_organ,
            "agents_using_model": self._rows_agents_using_model,
            "upsert_agent": self._run_upsert_agent,
            "remove_agent": self._run_remove_agent,
        }

    # --- the GraphClient protocol -------------------------------------------------------
    def list_agent_specs(self) -> list[AgentSpec]:
        with self._lock:
            return [self._agents[key] for key in sorted(self._agents)]

    def read_agent_specs(self) -> SpecReadResult:
        return SpecReadResult(valid=self.list_agent_specs(), invalid=[])

    def list_organ_specs(self) -> list[OrganSpec]:
        """Declared organs, plus a bare one for each organ an agent names but nobody declared."""
        with self._lock:
            organs = dict(self._organs)
            for spec in self._agents.values():
                organs.setdefault(spec.organ_id, OrganSpec(organ_id=spec.organ_id))
        return [organs[key] for key in sorted(organs)]

    def run(self, query_name: str, **params: Any) -> list[Row]:
        handler = self._queries.get(query_name)
        if handler is None:
            raise GraphQueryError(
                f"the in-memory graph cannot answer {query_name!r}; it answers "
                f"{', '.join(sorted(self._queries))}. Use a FalkorDB or Neo4j graph for it."
            )
        return handler(**params)

    def version(self) -> int:
        with self._lock:
            return self._version

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> MemoryGraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- direct edits (what upsert_agent / remove_agent do in a real graph) -------------
    def put(self, spec: AgentSpec) -> int:
        """Create or replace one agent; returns the new version."""
        with self._lock:
            self._agents[spec.agent_id] = spec
            self._version += 1
            return self._version

    def remove(self, agent_id: str) -> bool:
        """Remove one agent; the version only moves if it existed."""
        with self._lock:
            existed = self._agents.pop(agent_id, None) is not None
            self._version += int(existed)
            return existed

    # --- named queries ---------------------------------------------------------------
    def _rows_agent_specs(self) -> list[Row]:
        return [_as_row(spec) for spec in self.list_agent_specs()]

    def _rows_organ_specs(self) -> list[Row]:
        return [organ.model_dump() for organ in self.list_organ_specs()]

    def _rows_agents_in_organ(self, organ_id: str) -> list[Row]:
        return [
            {
                "agent_id": spec.agent_id,
                "name": spec.name,
                "num_cpus": spec.resources.num_cpus,
                "num_gpus": spec.resources.num_gpus,
            }
            for spec in self.list_agent_specs()
            if spec.organ_id == organ_id
        ]

    def _rows_agents_using_model(self, model_name: str) -> list[Row]:
        return [
            {"agent_id": spec.agent_id, "organ_id": spec.organ_id, "model_deprecated": False}
            for spec in self.list_agent_specs()
            if model_name in spec.models
        ]

    def _run_upsert_agent(self, **params: Any) -> list[Row]:
        row = dict(params)
        row["organ_ids"] = [row.pop("organ_id")]
        outcome = agent_spec_from_row(row)
        if not isinstance(outcome, AgentSpec):
            raise outcome[0].as_error()
        return [{"agent_id": outcome.agent_id, "version": self.put(outcome)}]

    def _run_remove_agent(self, agent_id: str) -> list[Row]:
        removed = self.remove(agent_id)
        return [{"removed": removed, "version": self.version()}]


def _as_row(spec: AgentSpec) -> Row:
    """The ``list_agent_specs`` row a graph would return for ``spec``."""
    params = spec.upsert_params()
    params["organ_ids"] = [params.pop("organ_id")]
    return params


#: The original design's name for the in-memory client.
MockGraphClient = MemoryGraphClient
