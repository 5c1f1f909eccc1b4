"""Settings the runtime reads from the environment, with their defaults (the README lists them).

The embedded stack's own knobs are read by ``seedcore_thin/local``, and Neo4j credentials by
the Neo4j backend, so that this module never imports a driver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from seedcore_thin.errors import ConfigError

DEFAULT_NAMESPACE = "seedcore-dev"
DEFAULT_POOL_MAX_AGENTS = 100


def _float(name: str, default: float, most: float | None = None) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0 or (most is not None and value > most):
        limit = "" if most is None else f" and at most {most:g}"
        raise ConfigError(f"{name} must be positive{limit}, got {raw!r}")
    return value


def default_namespace() -> str:
    """``SEEDCORE_NS``, else ``RAY_NAMESPACE``, else ``seedcore-dev``."""
    return os.environ.get("SEEDCORE_NS") or os.environ.get("RAY_NAMESPACE") or DEFAULT_NAMESPACE


def pool_max_agents() -> int:
    """``SEEDCORE_POOL_MAX_AGENTS``: pooled agents per host actor (default 100)."""
    return max(1, int(_float("SEEDCORE_POOL_MAX_AGENTS", DEFAULT_POOL_MAX_AGENTS)))


def state_dir() -> Path:
    """Where the embedded stack keeps its data (``SEEDCORE_HOME``, default ``.seedcore``)."""
    return Path(os.environ.get("SEEDCORE_HOME", ".seedcore")).resolve()


def default_graph_uri() -> str:
    """``SEEDCORE_GRAPH_URI``, else the embedded FalkorDB under the state folder."""
    return os.environ.get("SEEDCORE_GRAPH_URI") or f"falkordb+embedded://{state_dir() / 'graph'}"


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment; build one with :meth:`from_env`."""

    pg_dsn: str | None = None
    graph_uri: str = ""
    namespace: str = DEFAULT_NAMESPACE
    ray_address: str | None = None
    beat_sec: float = 5.0
    strict_reconcile: bool = False
    mass_removal_share: float = 0.5
    drain_grace_s: float = 30.0
    pool_max_agents: int = DEFAULT_POOL_MAX_AGENTS

    @classmethod
    def from_env(cls) -> Settings:
        strict = os.environ.get("TIER0_STRICT_RECONCILE", "").strip().lower()
        return cls(
            pg_dsn=os.environ.get("SEEDCORE_PG_DSN") or None,
            graph_uri=default_graph_uri(),
            namespace=default_namespace(),
            ray_address=os.environ.get("RAY_ADDRESS") or None,
            beat_sec=_float("REGISTRY_BEAT_SEC", 5.0),
            strict_reconcile=strict in {"1", "true", "yes", "on"},
            mass_removal_share=_float("SEEDCORE_MASS_REMOVAL_SHARE", 0.5, most=1.0),
            drain_grace_s=_float("SEEDCORE_DRAIN_GRACE_S", 30.0),
            pool_max_agents=pool_max_agents(),
        )
