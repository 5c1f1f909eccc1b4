"""The local stack, apart from the runtime core: PostgreSQL, FalkorDB and a Ray head on this
machine (loopback only), the demo and the fleet generator.

The core reaches this room only through the functions below, the one seam that resolves an
embedded address (and starts a server on demand where the caller asked for that); it never
imports the modules behind them. Importing this package starts nothing.
"""

from __future__ import annotations

from pathlib import Path

from seedcore_thin.config import state_dir


def read_int(path: Path) -> int | None:
    """The integer in a pid or port file; None when the file is missing or garbled."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def keep_ray_on_loopback() -> None:
    """Keep this process's Ray on 127.0.0.1 unless ``RAY_ADDRESS`` names another host."""
    from seedcore_thin.local.rayhead import keep_ray_on_loopback as keep

    keep()


def graph_server(home: Path) -> str:
    """``falkordb://127.0.0.1:PORT`` of the embedded FalkorDB under ``home``, started if needed."""
    from seedcore_thin.local.falkordb import start_falkordb

    return start_falkordb(home)


def graph_port(home: Path) -> int | None:
    """The port the embedded FalkorDB under ``home`` last listened on (clients follow it)."""
    from seedcore_thin.local.falkordb import falkordb_port

    return falkordb_port(home)


def ray_head(*, start: bool = False) -> str | None:
    """The embedded Ray head's address when it runs (started first when ``start``)."""
    from seedcore_thin.local.rayhead import ray_status, start_ray

    return ray_status() or (start_ray() if start else None)


def pg_dsn(home: Path | None = None) -> str | None:
    """``SEEDCORE_PG_DSN``, else the embedded PostgreSQL's DSN when it was set up."""
    from seedcore_thin.local.postgres import resolve_dsn

    return resolve_dsn(home or state_dir())
