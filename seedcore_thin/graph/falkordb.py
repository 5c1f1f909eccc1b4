"""FalkorDB backend through the native ``falkordb`` client (never Bolt, see the GUIDE).

URIs: ``falkordb://[user:password@]host:6379/GRAPH`` for a server, and
``falkordb+embedded://PATH[?graph=GRAPH]`` for the embedded server under ``PATH`` (relative to
the working directory; started on demand, followed if it moves). The graph defaults to ``fleet``.

Only schema DDL is adapted: FalkorDB has no ``CREATE CONSTRAINT``, so constraints and indexes
go through the client's API. Every other statement runs as written.
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import falkordb
import redis.exceptions
from falkordb.query_result import parse_scalar

from seedcore_thin import local
from seedcore_thin.config import default_graph_uri, state_dir
from seedcore_thin.errors import ConfigError, GraphQueryError, GraphUnavailable
from seedcore_thin.graph.base import GraphClient, Row
from seedcore_thin.graph.schema import SchemaChange
from seedcore_thin.specs import AgentSpec, OrganSpec, PolicySpec

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 2.0
_SOCKET_TIMEOUT_S = 60.0
_CONSTRAINT_WAIT_S = 30.0
_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
# SchemaChange.kind -> (what the client's create_node_.../create_edge_... makes, constraint type)
_SCHEMA_API = {
    "index": ("range_index", None),
    "unique": ("unique_constraint", "UNIQUE"),
    "not_null": ("mandatory_constraint", "MANDATORY"),
}


# Value types of FalkorDB's compact result set (falkordb.query_result.ResultSetScalarTypes).
_NULL, _STRING, _INTEGER, _DOUBLE, _ARRAY = 1, 2, 3, 5, 6
#: Types whose value arrives as the Python value itself (the client always decodes strings).
_PLAIN = frozenset({_NULL, _STRING, _INTEGER})


def _value(cell: list[Any], graph: falkordb.Graph) -> Any:
    """One ``[type, value]`` cell of a compact result. Nulls, strings, numbers and lists,
    nearly every value a read returns, are decoded here, a list's plain items inline: a
    fifth of the time the client's generic ``parse_scalar`` takes (1.5 million values in a
    100,000-agent read). Anything else (booleans, nodes, maps, ...) goes to
    ``parse_scalar``, so every value decodes as the client does."""
    kind, value = cell
    if kind in _PLAIN:
        return value
    if kind == _DOUBLE:
        return float(value)
    if kind == _ARRAY:
        return [item[1] if item[0] in _PLAIN else _value(item, graph) for item in value]
    return parse_scalar(cell, graph)


def _rows(response: list[Any], graph: falkordb.Graph) -> list[Row]:
    """Rows of a compact ``GRAPH.QUERY`` reply: [header, records, stats], or [stats]."""
    for part in (response[0], response[-1]):  # as falkordb.QueryResult checks them
        if isinstance(part, redis.exceptions.ResponseError):
            raise part
    if len(response) == 1 or not response[0]:
        return []
    columns = [name for _, name in response[0]]
    return [
        dict(zip(columns, [_value(cell, graph) for cell in record], strict=True))
        for record in response[1]
    ]


class FalkorDBGraphClient(GraphClient):
    """One graph (key) on a FalkorDB server."""

    def __init__(self, uri: str, *, graph: str | None = None) -> None:
        """``graph`` replaces the graph the URI names (MockGraphClient's private graph)."""
        scheme, _, rest = uri.partition("://")
        self._embedded_home: Path | None = None
        if scheme == "falkordb+embedded":
            location, _, query = rest.partition("?")
            if not location:
                raise ConfigError(f"{uri!r}: falkordb+embedded:// needs a data directory")
            self._embedded_home = Path(unquote(location))
            graph = graph or parse_qs(query).get("graph", [None])[0]
            uri = local.graph_server(self._embedded_home)
        elif scheme != "falkordb":
            raise ConfigError(f"not a FalkorDB URI: {uri!r}")
        parts = urlsplit(uri)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.graph_name = graph or unquote(parts.path.lstrip("/")) or "fleet"
        user, password = (unquote(v) if v else None for v in (parts.username, parts.password))
        self._auth = {"username": user, "password": password}
        self._db, self._graph = self._connect(self.port)

    def _connect(self, port: int) -> tuple[falkordb.FalkorDB, falkordb.Graph]:
        try:
            db = falkordb.FalkorDB(
                host=self.host,
                port=port,
                **self._auth,
                socket_connect_timeout=_CONNECT_TIMEOUT_S,
                socket_timeout=_SOCKET_TIMEOUT_S,
            )
            db.connection.ping()
        except _UNAVAILABLE as exc:
            raise GraphUnavailable(f"FalkorDB {self.host}:{port} is unreachable: {exc}") from None
        return db, db.select_graph(self.graph_name)

    def _query(self, statement: str, params: Mapping[str, Any], *, write: bool) -> list[Row]:
        """What ``Graph.query``/``ro_query`` send, with the reply decoded by :func:`_rows`."""
        command = "GRAPH.QUERY" if write else "GRAPH.RO_QUERY"
        text = self._graph._build_params_header(dict(params)) + statement
        response = self._graph.execute_command(command, self.graph_name, text, "--compact")
        return _rows(response, self._graph)

    def _execute(self, statement: str, params: Mapping[str, Any], *, write: bool) -> list[Row]:
        try:
            try:
                return self._query(statement, params, write=write)
            except _UNAVAILABLE:
                # the embedded server may have moved: follow it, and ask again once when
                # that is safe (a read); a write is left to the caller (it may have landed)
                if write or not self._follow_embedded():
                    raise
                return self._query(statement, params, write=False)
        except _UNAVAILABLE as exc:
            raise GraphUnavailable(f"FalkorDB {self.host}:{self.port}: {exc}") from None
        except redis.exceptions.ResponseError as exc:
            if not write and "empty key" in str(exc):
                return []  # the graph key does not exist yet: an empty graph
            raise GraphQueryError(f"FalkorDB rejected the statement: {exc}") from None

    def _follow_embedded(self) -> bool:
        """After a connection error: point at the embedded server's port now, if it moved.
        One read of its port file and at most one connect attempt, so a call still fails
        fast while the server is down."""
        port = None if self._embedded_home is None else local.graph_port(self._embedded_home)
        if port is None or port == self.port:
            return False
        try:
            db, graph = self._connect(port)
        except GraphUnavailable:
            return False
        log.info("embedded FalkorDB moved from port %d to %d", self.port, port)
        self._db.close()
        self.port, self._db, self._graph = port, db, graph
        return True

    def _apply_schema(self, statement: str, change: SchemaChange) -> None:
        entity = "node" if change.entity == "node" else "edge"
        create = getattr(self._graph, f"create_{entity}_{_SCHEMA_API[change.kind][0]}")
        try:
            create(change.label, *change.properties)
        except _UNAVAILABLE as exc:
            raise GraphUnavailable(f"FalkorDB {self.host}:{self.port}: {exc}") from None
        except redis.exceptions.ResponseError as exc:
            exists = any(text in str(exc) for text in ("already indexed", "already exists"))
            if not (exists and change.if_not_exists):
                raise GraphQueryError(f"FalkorDB rejected {change}: {exc}") from None
        if change.kind != "index":
            self._await_constraint(change)

    def _await_constraint(self, change: SchemaChange) -> None:
        """Constraints build asynchronously; wait, and fail if existing data violates one."""
        entity = "NODE" if change.entity == "node" else "RELATIONSHIP"
        wanted = (_SCHEMA_API[change.kind][1], change.label, entity, change.properties)
        deadline = time.monotonic() + _CONSTRAINT_WAIT_S
        while True:
            status = {
                (c["type"], c["label"], c["entitytype"], tuple(c["properties"])): c["status"]
                for c in self._graph.list_constraints()
            }.get(wanted)
            if status == "OPERATIONAL":
                return
            if status == "FAILED" or time.monotonic() > deadline:
                raise GraphQueryError(
                    f"constraint {change} is {status or 'missing'} on graph {self.graph_name!r}"
                    " (existing data may violate it)"
                )
            time.sleep(0.02)

    def delete_graph(self) -> None:
        """Drop this graph key entirely (tests and benchmarks use throwaway graphs)."""
        _delete(self._graph)

    def close(self) -> None:
        self._db.close()


class MockGraphClient(FalkorDBGraphClient):
    """Specs passed directly (the original design's ``MockGraphClient(agent_specs)``), in a
    private, migrated graph ``mock_<random>`` on the FalkorDB server of ``uri`` (default:
    ``SEEDCORE_GRAPH_URI`` if it names FalkorDB, else the embedded server), so every named
    query answers as on any graph. :meth:`close` (or garbage collection) deletes the graph."""

    def __init__(
        self,
        agents: Iterable[AgentSpec] = (),
        organs: Iterable[OrganSpec] = (),
        policies: Iterable[PolicySpec] = (),
        *,
        uri: str | None = None,
    ) -> None:
        # imported here: both modules import seedcore_thin.graph, which imports this one
        from seedcore_thin.graph import upsert_specs
        from seedcore_thin.graph.migrations import migrate_graph

        if uri is None:
            uri = default_graph_uri()
            if not uri.startswith("falkordb"):
                uri = f"falkordb+embedded://{state_dir() / 'graph'}"
        super().__init__(uri, graph=f"mock_{uuid.uuid4().hex[:12]}")
        self._drop = weakref.finalize(self, _delete, self._graph, quiet=True)
        try:
            migrate_graph(self)
            upsert_specs(self, agents, organs, policies)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._drop()
        super().close()


def _delete(graph: Any, *, quiet: bool = False) -> None:
    """Drop a graph key; ``quiet`` (private graphs at close) only logs a failure."""
    try:
        graph.delete()
    except (redis.exceptions.ResponseError, *_UNAVAILABLE) as exc:
        if "empty key" in str(exc) or "Invalid graph operation" in str(exc):
            return  # nothing to drop
        if not quiet:
            lost = not isinstance(exc, redis.exceptions.ResponseError)
            raise (GraphUnavailable if lost else GraphQueryError)(f"FalkorDB: {exc}") from None
        log.warning("could not delete graph %s: %s", graph.name, exc)
