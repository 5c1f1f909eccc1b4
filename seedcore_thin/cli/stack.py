"""``scripts/stack.py up|down|status``: the embedded local stack, one component at a time.

Each component knows how to start, stop and describe itself; ``up`` prints the settings
other commands need (``SEEDCORE_PG_DSN=...``). A component configured to use an external
service (its environment variable is set) is only checked, never started or stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from seedcore_thin.config import default_graph_uri, state_dir
from seedcore_thin.errors import SeedcoreError


class Component(Protocol):
    """One piece of the local stack."""

    @property
    def name(self) -> str: ...

    @property
    def env_var(self) -> str:
        """The variable that points at an external service instead of the embedded one."""
        ...

    def up(self, home: Path) -> str:
        """Start it (idempotent) and return how to reach it."""
        ...

    def down(self, home: Path) -> None: ...

    def status(self, home: Path) -> str | None:
        """How to reach it when running, else None."""
        ...


@dataclass(frozen=True)
class PostgresComponent:
    name: str = "postgres"
    env_var: str = "SEEDCORE_PG_DSN"

    def up(self, home: Path) -> str:
        from seedcore_thin.local import postgres

        external = os.environ.get(self.env_var)
        if external:
            if not postgres.reachable(external):
                raise SeedcoreError(f"{self.env_var} is set but the server does not answer")
            return postgres.redact_dsn(external)
        return postgres.start_postgres(home)

    def down(self, home: Path) -> None:
        from seedcore_thin.local import postgres

        if not os.environ.get(self.env_var):
            postgres.stop_postgres(home)

    def status(self, home: Path) -> str | None:
        from seedcore_thin.local import postgres

        external = os.environ.get(self.env_var)
        if external:
            return postgres.redact_dsn(external) if postgres.reachable(external) else None
        return postgres.postgres_status(home)


def _embedded_graph_home() -> Path | None:
    """The data folder of an embedded graph URI, or None when the graph is external."""
    scheme, _, rest = default_graph_uri().partition("://")
    if scheme != "falkordb+embedded":
        return None
    return Path(rest.partition("?")[0]).resolve()


@dataclass(frozen=True)
class FalkorDBComponent:
    """The embedded graph (the same server ``falkordb+embedded://`` URIs start on demand)."""

    name: str = "falkordb"
    env_var: str = "SEEDCORE_GRAPH_URI"

    def up(self, home: Path) -> str:
        graph_home = _embedded_graph_home()
        if graph_home is None:
            return os.environ[self.env_var]
        from seedcore_thin.local.falkordb import start_falkordb

        start_falkordb(graph_home)
        # The embedded URI is stable across restarts; the server's port is not.
        return default_graph_uri()

    def down(self, home: Path) -> None:
        graph_home = _embedded_graph_home()
        if graph_home is not None:
            from seedcore_thin.local.falkordb import stop_falkordb

            stop_falkordb(graph_home)

    def status(self, home: Path) -> str | None:
        graph_home = _embedded_graph_home()
        if graph_home is None:
            return os.environ[self.env_var]
        from seedcore_thin.local.falkordb import falkordb_status

        return falkordb_status(graph_home)


@dataclass(frozen=True)
class RayComponent:
    """A Ray head on loopback, so detached agents outlive the command that created them."""

    name: str = "ray"
    env_var: str = "RAY_ADDRESS"

    def up(self, home: Path) -> str:
        from seedcore_thin.local.rayhead import start_ray

        return os.environ.get(self.env_var) or start_ray(home)

    def down(self, home: Path) -> None:
        from seedcore_thin.local.rayhead import stop_ray

        if not os.environ.get(self.env_var):
            stop_ray(home)

    def status(self, home: Path) -> str | None:
        from seedcore_thin.local.rayhead import ray_status

        return os.environ.get(self.env_var) or ray_status(home)


COMPONENTS: list[Component] = [PostgresComponent(), FalkorDBComponent(), RayComponent()]


def run(action: str, components: Sequence[Component], home: Path) -> int:
    """Apply ``action`` to each component; return the exit code."""
    failed = False
    ordered = list(components) if action != "down" else list(reversed(components))
    for component in ordered:
        try:
            if action == "up":
                print(f"{component.env_var}={component.up(home)}")
            elif action == "down":
                component.down(home)
                print(f"# {component.name}: stopped")
            else:
                where = component.status(home)
                print(f"# {component.name}: {'running at ' + where if where else 'stopped'}")
                failed = failed or where is None
        except SeedcoreError as exc:
            print(f"# {component.name}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack.py", description="Start, stop or describe the local stack (loopback only)."
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument(
        "--only",
        choices=[c.name for c in COMPONENTS],
        action="append",
        help="act on this component only (repeatable)",
    )
    args = parser.parse_args(argv)
    chosen = [c for c in COMPONENTS if not args.only or c.name in args.only]
    return run(args.action, chosen, state_dir())
