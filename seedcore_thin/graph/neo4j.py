"""Neo4j backend through the official ``neo4j`` driver (production).

URIs as the driver takes them (``neo4j://``, ``bolt://``, ``+s``, ``+ssc``), plus credentials
in the userinfo (else ``NEO4J_USER``/``NEO4J_PASSWORD``) and a database as the path (else
``NEO4J_DATABASE``, else the server default). Reads go to readers. Migration files are Neo4j
syntax already, so schema DDL runs as written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import neo4j
from neo4j import exceptions as neo4j_errors

from seedcore_thin.errors import ConfigError, GraphQueryError, GraphUnavailable
from seedcore_thin.graph.base import GraphClient, Row

SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
_CONNECT_TIMEOUT_S = 2.0
# How long one call retries a lost server (the driver's default: 30 s, delays doubling from
# 1 s), so a loop is back within about a second of the server's return.
RETRY_S = 1.0
_UNAVAILABLE = (
    neo4j_errors.ServiceUnavailable,
    neo4j_errors.SessionExpired,
    neo4j_errors.DatabaseUnavailable,
    OSError,
)


def split_neo4j_uri(uri: str) -> tuple[str, tuple[str, str] | None, str | None]:
    """(driver URI without credentials or path, auth or None, database or None)."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"not a Neo4j URI (schemes: {', '.join(SCHEMES)}): {uri!r}")
    if not parts.hostname:
        raise ConfigError(f"Neo4j URI has no host: {uri!r}")
    user = unquote(parts.username) if parts.username else os.environ.get("NEO4J_USER")
    password = unquote(parts.password) if parts.password else os.environ.get("NEO4J_PASSWORD")
    auth = (user, password or "") if user else None
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    database = unquote(parts.path.strip("/")) or os.environ.get("NEO4J_DATABASE") or None
    return urlunsplit((parts.scheme, netloc, "", parts.query, "")), auth, database


class Neo4jGraphClient(GraphClient):
    """A Neo4j database (or cluster) holding the desired state."""

    def __init__(self, uri: str) -> None:
        driver_uri, auth, self.database = split_neo4j_uri(uri)
        self._where = driver_uri  # no credentials: safe for logs and errors
        try:
            self._driver = neo4j.GraphDatabase.driver(
                driver_uri,
                auth=auth,
                connection_timeout=_CONNECT_TIMEOUT_S,
                max_transaction_retry_time=RETRY_S,
            )
            self._driver.verify_connectivity()
        except _UNAVAILABLE as exc:
            raise GraphUnavailable(f"Neo4j at {self._where} is unreachable: {exc}") from None
        except neo4j_errors.AuthError:
            raise GraphUnavailable(f"Neo4j at {self._where} refused the credentials") from None

    def _execute(self, statement: str, params: Mapping[str, Any], *, write: bool) -> list[Row]:
        routing = neo4j.RoutingControl.WRITE if write else neo4j.RoutingControl.READ
        try:
            # the statement is text from versioned files, never user input
            records, _, _ = self._driver.execute_query(
                statement, dict(params), routing_=routing, database_=self.database
            )
        except _UNAVAILABLE as exc:
            raise GraphUnavailable(f"Neo4j at {self._where}: {exc}") from None
        except neo4j_errors.Neo4jError as exc:
            raise GraphQueryError(f"Neo4j rejected the statement: {exc}") from None
        return [record.data() for record in records]

    def close(self) -> None:
        self._driver.close()
