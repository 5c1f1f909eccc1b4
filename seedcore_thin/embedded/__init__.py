"""The embedded local stack: PostgreSQL, FalkorDB and Ray on this machine, loopback only."""

from __future__ import annotations

from pathlib import Path


def read_int(path: Path) -> int | None:
    """The integer in a pid or port file; None when the file is missing or garbled."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
