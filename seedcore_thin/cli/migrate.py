"""``scripts/migrate.py``: apply sql/migrations to PostgreSQL and cypher/migrations to the graph."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seedcore_thin.config import default_graph_uri, state_dir
from seedcore_thin.errors import SeedcoreError


def _migrate_pg(dsn: str | None, dry_run: bool) -> list[str]:
    from seedcore_thin.local import pg_dsn as resolve_dsn
    from seedcore_thin.migrations import migrate_postgres

    dsn = dsn or resolve_dsn(state_dir())
    if not dsn:
        raise SeedcoreError(
            "no PostgreSQL: pass --pg-dsn, set SEEDCORE_PG_DSN or run `scripts/stack.py up`"
        )
    return migrate_postgres(dsn, dry_run=dry_run)


def _migrate_graph(uri: str, dry_run: bool) -> list[str]:
    from seedcore_thin.graph import connect_graph
    from seedcore_thin.graph.migrations import migrate_graph

    client = connect_graph(uri)
    try:
        return migrate_graph(client, dry_run=dry_run)
    finally:
        client.close()


def _report(target: str, names: list[str], dry_run: bool) -> None:
    verb = "pending" if dry_run else "applied"
    if not names:
        print(f"{target}: up to date")
    for name in names:
        print(f"{target}: {verb} {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="migrate.py", description="Apply the versioned SQL and Cypher migrations."
    )
    parser.add_argument(
        "--pg-dsn",
        help="PostgreSQL DSN (default SEEDCORE_PG_DSN, else the embedded stack's)",
    )
    parser.add_argument(
        "--graph-uri",
        default=default_graph_uri(),
        help="graph URI (default SEEDCORE_GRAPH_URI)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list pending migrations only")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--pg-only", action="store_true", help="skip the graph")
    only.add_argument("--graph-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    try:
        if not args.graph_only:
            _report("postgres", _migrate_pg(args.pg_dsn, args.dry_run), args.dry_run)
        if not args.pg_only:
            _report("graph", _migrate_graph(args.graph_uri, args.dry_run), args.dry_run)
    except SeedcoreError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    return 0
