"""Audit retention end to end: the runtime role prunes old reconcile runs through the named
query, in bounded batches, with injected time (the pgTAP file covers every rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seedcore_thin.config import Settings
from seedcore_thin.errors import ConfigError
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.queries import parse_named_sql, sql_dir
from seedcore_thin.registry import Registry
from tests.fixtures_pg import admin_registry, as_role, seed_finished_runs

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _prune(reg: Registry, now: datetime, **args: object) -> tuple[int, int, bool]:
    params = {"batch_size": 500, "now": now, **args}
    row = reg.call("prune_reconcile_history", **params)
    return row["runs_deleted"], row["actions_deleted"], row["more"]


def _empty_run(reg: Registry, term: int, at: datetime) -> int:
    run_id = reg.call(
        "begin_run",
        holder="rec", term=term, plan={"create": []}, scope=None, strict=False,
        host="h", pid=1, name="reconciler", now=at,
    )  # fmt: skip
    reg.call("finish_run", run_id=run_id, error=None, now=at)
    return int(run_id)


def test_the_runtime_prunes_old_runs_in_batches(pg_dsn: str) -> None:
    with admin_registry(as_role(pg_dsn, "seedcore_runtime")) as reg:
        lease = reg.call(
            "acquire_lease", holder="rec", ttl=timedelta(days=365), name="reconciler", now=T0
        )
        runs = [_empty_run(reg, lease["term"], T0 + timedelta(days=day)) for day in range(5)]

        assert _prune(reg, T0 + timedelta(days=20)) == (0, 0, False), "all inside 30 days"
        later = T0 + timedelta(days=40)
        assert _prune(reg, later, batch_size=3) == (3, 0, True)
        assert _prune(reg, later, batch_size=3) == (1, 0, False), "the latest run stays"
        left = reg.call("reconcile_runs_recent", limit=10)
        assert [r["run_id"] for r in left] == [runs[-1]]

        with pytest.raises(ConfigError, match="invalid retention"):
            _prune(reg, later, older_than=timedelta(days=-1))


def test_the_named_query_header_carries_its_shape() -> None:
    queries = parse_named_sql((sql_dir() / "queries.sql").read_text(encoding="utf-8"))
    assert queries["prune_reconcile_history"].shape == "one"
    assert "prune_reconcile_history(" in queries["prune_reconcile_history"].text
    assert "prune" not in queries["finish_run"].text, "blocks stay apart"


def test_the_manager_prunes_past_retention_and_a_failure_only_logs(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What the watch loop calls every PRUNE_EVERY_S (tests/test_watch.py checks the cadence)."""
    runs = seed_finished_runs(pg_dsn, 3, days_ago=45)
    unused_graph = object()  # pruning reads no graph; the manager only needs one attached
    manager = Tier0Manager(Settings(pg_dsn=pg_dsn), graph=unused_graph)
    try:
        assert manager.prune_audit() == 2, "all but the latest run are past 30 days"
        assert manager.prune_audit() == 0
    finally:
        manager.close()
    with admin_registry(pg_dsn) as reg:
        assert [r["run_id"] for r in reg.call("reconcile_runs_recent", limit=10)] == [runs[-1]]

    dead = "postgresql://postgres@127.0.0.1:9/nothing?connect_timeout=1"
    down = Tier0Manager(Settings(pg_dsn=dead), graph=unused_graph)
    try:
        assert down.prune_audit() == 0  # no exception escapes
    finally:
        down.close()
    assert "pruning the reconcile history failed" in caplog.text
