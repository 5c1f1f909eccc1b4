"""The registry client end to end against a real PostgreSQL."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from seedcore_thin.errors import (
    ConfigError,
    FencedEpoch,
    InvalidOutcome,
    InvalidStatus,
    RegistryUnavailable,
    RunClosed,
    UnknownInstance,
)
from seedcore_thin.migrations import list_migrations
from seedcore_thin.queries import (
    SHAPES,
    SQL_FILES,
    load_sql,
    parse_named_sql,
    project_root,
    sql_dir,
)
from seedcore_thin.registry import ERRORS, InstanceRecord, Registry
from tests.fixtures_pg import ADMIN_SQL, TcpProxy, admin_registry, as_role


def record(epoch: uuid.UUID, logical_id: str, **extra: object) -> InstanceRecord:
    return InstanceRecord(
        instance_id=uuid.uuid4(),
        logical_id=logical_id,
        epoch=epoch,
        actor_name=f"actor-{logical_id}",
        namespace="seedcore-test",
        node_id="node-1",
        ip_address="127.0.0.1",
        pid=4242,
        **extra,  # type: ignore[arg-type]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def status_counts(dsn: str) -> dict[str, int]:
    with admin_registry(dsn) as reg:
        return {row["status"]: row["n"] for row in reg.call("status_counts")}


def test_headers_declare_a_shape() -> None:
    parsed = parse_named_sql("-- name: a :one\n-- says why\nSELECT %(x)s, %(y)s;\n")["a"]
    assert (parsed.shape, parsed.params, parsed.description) == ("one", {"x", "y"}, "says why")
    with pytest.raises(ValueError, match="SHAPE"):
        parse_named_sql("-- name: a\nSELECT 1;\n")
    assert {q.shape for q in load_sql([ADMIN_SQL]).values()} <= set(SHAPES)


def test_sql_files_hold_only_the_calls_the_package_makes() -> None:
    """Test and admin statements live in tests/sql/admin.sql, not in sql/."""
    package = "".join(
        p.read_text(encoding="utf-8") for p in (project_root() / "seedcore_thin").rglob("*.py")
    )
    for name in SQL_FILES:
        unused = [
            q for q in parse_named_sql((sql_dir() / name).read_text()) if f'"{q}"' not in package
        ]
        assert unused == [], f"sql/{name}: no caller in seedcore_thin"


def test_every_sqlstate_the_sql_raises_has_a_type() -> None:
    raised = {
        code
        for f in list_migrations()
        for code in re.findall(r"ERRCODE\s*=\s*'(SC\d{3})'", f.path.read_text(encoding="utf-8"))
    }
    assert {"SC001", "SC101", "SC104"} <= raised
    assert raised <= set(ERRORS), f"unmapped: {raised - set(ERRORS)}"


def test_audit_errors_are_typed(registry: Registry) -> None:
    with pytest.raises(RunClosed):
        registry.call("finish_run", run_id=424242)
    step = {"kind": "create", "namespace": "ns", "agent_id": "a", "duration_ms": 1}
    with pytest.raises(InvalidOutcome):
        registry.call("record_action", run_id=424242, outcome="bogus", **step)
    with pytest.raises(RunClosed):
        registry.call("record_action", run_id=424242, outcome="failed", **step)
    with pytest.raises(TypeError, match="no parameter"):
        registry.call("finish_run", run=1)


def test_shapes_come_from_the_header(registry: Registry) -> None:
    epoch = registry.call("current_epoch")  # :scalar
    assert isinstance(epoch, uuid.UUID)
    assert registry.call("register_instance", **vars(record(epoch, "s"))) is None  # :exec
    assert registry.call("active_instance") == []  # :many
    row = registry.call("reconcile_live_fingerprint")  # :one, namespace left out: NULL
    assert row == {"live": 0, "digest": ""}


def test_register_beat_and_read_active(registry: Registry) -> None:
    epoch = registry.call("current_epoch")
    a1 = record(epoch, "agent-a", metadata={"organ": "cognition"})
    a2 = record(epoch, "agent-a")
    b = record(epoch, "agent-b")
    for rec in (a1, a2, b):
        registry.register_instance(rec)
    registry.register_instance(a1)  # idempotent
    assert registry.active_instances() == [], "starting instances are not active"

    assert registry.call("beat", instance_id=a1.instance_id, epoch=epoch) is True
    assert registry.beat_many([a2.instance_id, b.instance_id, uuid.uuid4()], epoch) == 2

    active = registry.active_instances()
    assert [row.logical_id for row in active] == ["agent-a", "agent-b"]
    by_agent = {row.logical_id: row for row in active}
    assert by_agent["agent-a"].instance_id == a2.instance_id, "freshest replica wins"
    assert by_agent["agent-a"].live_replicas == 2
    assert by_agent["agent-b"].ip_address == "127.0.0.1"
    assert by_agent["agent-b"].cluster_epoch == epoch
    replicas = registry.call("active_replicas")
    assert {r["instance_id"] for r in replicas} == {a1.instance_id, a2.instance_id, b.instance_id}
    assert next(r for r in replicas if r["instance_id"] == a1.instance_id)["metadata"] == {
        "organ": "cognition"
    }

    health = {
        (h["status"], h["is_current_epoch"]): h["instances"]
        for h in registry.call("instance_health")
    }
    assert health == {("alive", True): 3}


def test_typed_errors(registry: Registry) -> None:
    epoch = registry.call("current_epoch")
    rec = record(epoch, "agent-x")
    registry.register_instance(rec)
    with pytest.raises(InvalidStatus):
        registry.call("set_instance_status", instance_id=rec.instance_id, status="sleeping")
    with pytest.raises(UnknownInstance):
        registry.call("set_instance_status", instance_id=uuid.uuid4(), status="alive")
    with pytest.raises(UnknownInstance):
        registry.call("deregister_instance", instance_id=uuid.uuid4())
    with pytest.raises(FencedEpoch):
        registry.register_instance(record(uuid.uuid4(), "agent-y"))

    registry.call("set_instance_status", instance_id=rec.instance_id, status="draining")
    assert registry.call("beat", instance_id=rec.instance_id, epoch=epoch) is True
    registry.call("deregister_instance", instance_id=rec.instance_id)
    assert registry.call("beat", instance_id=rec.instance_id, epoch=epoch) is False, (
        "a beat never revives the dead"
    )


def test_rotate_epoch_fences_old_instances(registry: Registry) -> None:
    old = registry.call("current_epoch")
    recs = [record(old, f"agent-{i}") for i in range(3)]
    for rec in recs:
        registry.register_instance(rec)
    assert registry.beat_many([r.instance_id for r in recs], old) == 3

    new = registry.call("rotate_epoch")
    assert new != old
    assert registry.call("current_epoch") == new
    assert registry.active_instances() == []
    with pytest.raises(FencedEpoch):
        registry.beat_many([r.instance_id for r in recs], old)
    with pytest.raises(FencedEpoch):
        registry.register_instance(record(old, "late"))
    assert registry.call("expire_old_epoch_instances") == 0, "rotation already fenced them"

    # The same actor rejoins under the new epoch.
    rejoined = InstanceRecord(recs[0].instance_id, recs[0].logical_id, new)
    registry.register_instance(rejoined)
    assert registry.call("beat", instance_id=rejoined.instance_id, epoch=new) is True
    assert [r.instance_id for r in registry.active_instances()] == [rejoined.instance_id]


def test_expire_with_injected_time_and_self_preservation(registry: Registry) -> None:
    epoch = registry.call("current_epoch")
    t0 = datetime.now(UTC)
    recs = [record(epoch, f"agent-{i}") for i in range(10)]
    for rec in recs:
        registry.register_instance(rec, now=t0)
    assert registry.beat_many([r.instance_id for r in recs], epoch, now=t0) == 10

    later = t0 + timedelta(seconds=20)
    registry.beat_many([r.instance_id for r in recs[:3]], epoch, now=later)
    held = registry.expire_stale(now=later)
    assert held["held_back"] and held["expired"] == 0
    assert (held["candidates"], held["live"]) == (7, 10)
    assert status_counts_via(registry) == {"alive": 10}

    forced = registry.expire_stale(force=True, now=later)
    assert (forced["expired"], forced["held_back"]) == (7, False)
    assert registry.expire_stale(timeout=timedelta(hours=1), now=later)["expired"] == 0
    assert status_counts_via(registry) == {"alive": 3, "dead": 7}


def status_counts_via(registry: Registry) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in registry.call("instance_health"):
        counts[row["status"]] = counts.get(row["status"], 0) + row["instances"]
    return counts


def test_concurrent_register_beat_expire_no_lost_or_duplicated_rows(pg_dsn: str) -> None:
    """Four writers register overlapping ids and beat while expiry passes run."""
    with Registry(pg_dsn, max_size=2) as setup:
        epoch = setup.call("current_epoch")
    shared = [record(epoch, f"shared-{i}") for i in range(40)]
    own = [[record(epoch, f"w{w}-{i}") for i in range(60)] for w in range(4)]
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        try:
            with Registry(pg_dsn, max_size=1, timeout=10) as reg:
                barrier.wait()
                mine = own[w] + shared
                for rec in mine[w::1] + mine[: w * 3]:
                    reg.register_instance(rec)
                for _ in range(5):
                    reg.beat_many([r.instance_id for r in mine], epoch)
        except BaseException as exc:
            errors.append(exc)

    def expirer() -> None:
        try:
            with Registry(pg_dsn, max_size=1, timeout=10) as reg:
                barrier.wait()
                while not stop.is_set():
                    assert reg.expire_stale()["expired"] == 0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    exp = threading.Thread(target=expirer)
    for t in [*threads, exp]:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    exp.join(60)
    assert not errors, errors

    with admin_registry(pg_dsn) as admin:
        row = admin.call("count_instances")
    expected = 40 + 4 * 60
    assert row == {"n_rows": expected, "n_ids": expected}, "every instance exactly once"
    assert status_counts(pg_dsn) == {"alive": expected}
    with Registry(pg_dsn) as reg:
        active = reg.active_instances()
    assert len(active) == expected
    assert len({a.logical_id for a in active}) == expected


def test_registration_racing_rotation_is_always_fenced(pg_dsn: str) -> None:
    """No instance stays live under an old epoch, whatever the interleaving."""
    with admin_registry(pg_dsn) as reg:
        epoch = reg.call("current_epoch")
        registering = threading.Event()
        rotated = threading.Event()

        def rotate() -> None:
            registering.wait(30)
            reg.call("rotate_epoch")
            rotated.set()

        rotator = threading.Thread(target=rotate)
        rotator.start()
        registered = fenced = 0
        while fenced < 5 and registered < 20_000:
            try:
                reg.register_instance(record(epoch, f"agent-{registered + fenced}"))
                registered += 1
            except FencedEpoch:
                fenced += 1
                assert rotated.wait(30), "only a rotation fences"
            if registered == 20:
                registering.set()
        rotator.join()
        health = reg.call("instance_health")
    assert fenced == 5 and registered >= 20
    stragglers = [h for h in health if not h["is_current_epoch"] and h["status"] != "dead"]
    assert stragglers == []
    fenced_rows = sum(h["instances"] for h in health if not h["is_current_epoch"])
    assert fenced_rows == registered, "every registration that succeeded was fenced"


def test_unreachable_database_fails_fast() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    started = time.monotonic()
    reg = Registry(dsn)
    assert time.monotonic() - started < 0.5, "constructing a Registry never blocks"
    try:
        for call in (
            reg.active_instances,
            lambda: reg.beat_many([uuid.uuid4()], uuid.uuid4()),
            lambda: reg.call("current_epoch"),
        ):
            t = time.monotonic()
            with pytest.raises(RegistryUnavailable):
                call()
            assert time.monotonic() - t < 2.0
    finally:
        reg.close()


def test_retries_after_the_server_dropped_its_sessions(registry: Registry, pg_dsn: str) -> None:
    epoch = registry.call("current_epoch")  # the pool now holds a live session
    with admin_registry(pg_dsn) as admin:
        killed = admin.call("terminate_other_sessions")
    assert killed >= 1
    assert registry.call("current_epoch") == epoch, "a broken pooled session is retried"


def test_a_returning_server_is_used_again_within_a_second(
    pg_proxy_dsn: tuple[str, TcpProxy],
) -> None:
    """After a long outage the pool's reconnect backoff has not grown past a second."""
    dsn, proxy = pg_proxy_dsn
    with Registry(dsn, max_size=1) as reg:  # the heartbeat relay's size
        epoch = reg.call("current_epoch")
        proxy.down()
        outage_ends = time.monotonic() + 6.0  # uncapped, the pool would wait 4-8 s by now
        while time.monotonic() < outage_ends:
            with pytest.raises(RegistryUnavailable):
                reg.call("current_epoch")
            time.sleep(0.3)
        proxy.up()
        back = time.monotonic()
        assert reg.call("current_epoch") == epoch
        assert time.monotonic() - back < 1.5


def test_unmigrated_database_is_a_config_error(pg_empty_dsn: str) -> None:
    with Registry(pg_empty_dsn) as reg, pytest.raises(ConfigError, match="migrate"):
        reg.call("current_epoch")


def test_runtime_role_uses_the_api_but_cannot_write_tables(pg_dsn: str) -> None:
    runtime_dsn = as_role(pg_dsn, "seedcore_runtime")
    with Registry(runtime_dsn) as reg:
        epoch = reg.call("current_epoch")
        rec = record(epoch, "agent-r")
        reg.register_instance(rec)
        assert reg.beat_many([rec.instance_id], epoch) == 1
        assert [a.logical_id for a in reg.active_instances()] == ["agent-r"]
        assert reg.expire_stale()["expired"] == 0
    with admin_registry(runtime_dsn) as admin, pytest.raises(ConfigError, match="privilege"):
        admin.call("insert_instance_directly", instance_id=uuid.uuid4())


def test_bi_role_reads_views_only(pg_dsn: str) -> None:
    with admin_registry(pg_dsn) as owner:
        epoch = owner.call("current_epoch")
        rec = record(epoch, "agent-bi")
        owner.register_instance(rec)
        owner.call("beat", instance_id=rec.instance_id, epoch=epoch)
    bi_dsn = as_role(pg_dsn, "seedcore_bi")
    with admin_registry(bi_dsn) as bi:
        assert [a.instance_id for a in bi.active_instances()] == [rec.instance_id]
        assert sum(h["instances"] for h in bi.call("instance_health")) == 1
        with pytest.raises(ConfigError, match="privilege"):
            bi.call("beat", instance_id=rec.instance_id, epoch=epoch)
        with pytest.raises(ConfigError, match="privilege"):
            bi.call("select_instances_directly")
