"""Audit retention end to end: the runtime role prunes old reconcile runs through the named
query, in bounded batches, with injected time (the pgTAP file covers every rule)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from seedcore_thin.queries import parse_named_sql, sql, sql_dir
from tests.fixtures_pg import as_role

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _prune(conn: psycopg.Connection, now: datetime, **args: object) -> tuple[int, int, bool]:
    params = {"older_than": None, "max_runs": None, "batch_size": 500, "now": now, **args}
    row = conn.execute(sql("prune_reconcile_history"), params).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _empty_run(conn: psycopg.Connection, term: int, at: datetime) -> int:
    plan = json.dumps({"create": []})
    row = conn.execute(
        sql("begin_run"),
        {"holder": "rec", "term": term, "plan": plan, "scope": None, "strict": False,
         "host": "h", "pid": 1, "name": "reconciler", "now": at},
    ).fetchone()  # fmt: skip
    assert row is not None
    conn.execute(sql("finish_run"), {"run_id": row[0], "error": None, "now": at})
    return int(row[0])


def test_the_runtime_prunes_old_runs_in_batches(pg_dsn: str) -> None:
    with psycopg.connect(as_role(pg_dsn, "seedcore_runtime"), autocommit=True) as conn:
        lease = conn.execute(
            sql("acquire_lease"),
            {"holder": "rec", "ttl": "365 days", "name": "reconciler", "now": T0},
        ).fetchone()
        assert lease is not None
        runs = [_empty_run(conn, lease[0], T0 + timedelta(days=day)) for day in range(5)]

        assert _prune(conn, T0 + timedelta(days=20)) == (0, 0, False), "all inside 30 days"
        later = T0 + timedelta(days=40)
        assert _prune(conn, later, batch_size=3) == (3, 0, True)
        assert _prune(conn, later, batch_size=3) == (1, 0, False), "the latest run stays"
        left = conn.execute(sql("reconcile_runs_recent"), {"limit": 10}).fetchall()
        assert [r[0] for r in left] == [runs[-1]]

        with pytest.raises(psycopg.Error) as bad:
            _prune(conn, later, older_than="-1 day")
        assert bad.value.sqlstate == "SC105"


def test_the_named_query_header_carries_its_shape() -> None:
    queries = parse_named_sql((sql_dir() / "queries.sql").read_text(encoding="utf-8"))
    assert "prune_reconcile_history(" in queries["prune_reconcile_history"].text
    assert "prune" not in queries["reconcile_actions_of_run"].text, "blocks stay apart"
