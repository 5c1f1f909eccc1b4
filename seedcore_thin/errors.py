"""Typed errors: callers branch on the type, never on message text.

``registry.ERRORS`` maps every SQLSTATE the PL/pgSQL raises (sql/migrations) onto these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class SeedcoreError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(SeedcoreError):
    """A setting (environment variable, URI, DSN) is missing or malformed."""


class RegistryUnavailable(SeedcoreError):
    """PostgreSQL cannot be reached in time; callers fall back to Ray discovery."""


class FencedEpoch(SeedcoreError):
    """The caller's cluster epoch is no longer current (SQLSTATE SC001)."""


class LeaseLost(FencedEpoch):
    """This reconciler no longer holds its lease: expired, taken over, or epoch fenced (SC102)."""


class UnknownInstance(SeedcoreError):
    """The instance id is not in the registry (SQLSTATE SC002)."""


class InvalidStatus(SeedcoreError):
    """A status outside starting/alive/draining/dead (SQLSTATE SC003)."""


class RunClosed(SeedcoreError):
    """The reconcile run is unknown or closed, or its step was already recorded (SC103)."""


class InvalidOutcome(SeedcoreError):
    """A step outcome outside succeeded/failed/pending/skipped (SQLSTATE SC104)."""


class MigrationError(SeedcoreError):
    """A migration file is misnamed, changed after being applied, or failed."""


class GraphUnavailable(SeedcoreError):
    """The graph database cannot be reached; reconcile must not remove anything."""


class GraphQueryError(SeedcoreError):
    """The graph rejected a statement, or a backend cannot answer a named query."""


class QueryNotFound(SeedcoreError):
    """No SQL or Cypher file defines the named query."""


class InvalidSpec(SeedcoreError):
    """An agent or organ spec failed validation; names the agent and the field."""

    def __init__(self, agent_id: str | None, field: str, reason: str) -> None:
        self.agent_id, self.field, self.reason = agent_id, field, reason
        super().__init__(f"agent {agent_id or '<missing id>'}: field {field!r}: {reason}")


class InvalidTask(SeedcoreError):
    """A task request is malformed; raised before any routing happens."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"task field {field!r}: {reason}")


class NoQualifiedAgent(SeedcoreError):
    """No live agent satisfies the task; ``reasons`` maps agent id to why not (the agents
    that came closest), ``summary`` counts the others by reason (an agent may count twice)."""

    def __init__(
        self,
        message: str,
        reasons: Mapping[str, Sequence[str]],
        summary: Mapping[str, int] | None = None,
    ) -> None:
        self.reasons = {k: list(v) for k, v in reasons.items()}
        self.summary = dict(summary or {})
        super().__init__(message)


class LeaderLockHeld(SeedcoreError):
    """Another reconciler holds the apply lock (SC101); ``holder`` says who."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(f"reconcile lock is held by {holder}")


class AgentSetupFailed(SeedcoreError):
    """The user's agent failed to start (import error, ``setup`` raised): never routed."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type, self.message = error_type, message
        super().__init__(f"setup failed: {error_type}: {message}")


class DispatchFailed(SeedcoreError):
    """Qualified live agents existed but the task could not be delivered or timed out;
    ``attempts`` lists (agent id, what went wrong) in the order they were tried."""

    def __init__(self, message: str, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = list(attempts)
        super().__init__(message)
