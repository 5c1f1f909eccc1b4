"""Shared pytest setup: real PostgreSQL, FalkorDB and Ray fixtures live in plugin modules."""

from __future__ import annotations

import os

import seedcore_thin  # noqa: F401  (first: it keeps every test Ray on loopback)

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

pytest_plugins = [
    "tests.fixtures_pg",
    "tests.fixtures_graph",
    "tests.fixtures_ray",
]
