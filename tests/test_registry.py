"""The registry client end to end against a real PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from seedcore_thin.errors import (
    ConfigError,
    FencedEpoch,
    InvalidStatus,
    RegistryUnavailable,
    UnknownInstance,
)
from seedcore_thin.registry import InstanceRecord, Registry
from tests.fixtures_pg import as_role, probe


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
    with psycopg.connect(dsn) as conn:
        return {row[0]: row[1] for row in conn.execute(probe("status_counts"))}


def test_register_beat_and_read_active(registry: Registry) -> None:
    epoch = registry.current_epoch()
    a1 = record(epoch, "agent-a", metadata={"organ": "cognition"})
    a2 = record(epoch, "agent-a")
    b = record(epoch, "agent-b")
    for rec in (a1, a2, b):
        registry.register_instance(rec)
    registry.register_instance(a1)  # idempotent
    assert registry.active_instances() == [], "starting instances are not active"

    assert registry.beat(a1.instance_id, epoch) is True
    assert registry.beat_many([a2.instance_id, b.instance_id, uuid.uuid4()], epoch) == 2

    active = registry.active_instances()
    assert [row.logical_id for row in active] == ["agent-a", "agent-b"]
    by_agent = {row.logical_id: row for row in active}
    assert by_agent["agent-a"].instance_id == a2.instance_id, "freshest replica wins"
    assert by_agent["agent-a"].live_replicas == 2
    assert by_agent["agent-b"].ip_address == "127.0.0.1"
    assert by_agent["agent-b"].cluster_epoch == epoch
    replicas = registry.active_replicas()
    assert {r.instance_id for r in replicas} == {a1.instance_id, a2.instance_id, b.instance_id}
    assert next(r for r in replicas if r.instance_id == a1.instance_id).metadata == {
        "organ": "cognition"
    }

    health = {(h.status, h.is_current_epoch): h.instances for h in registry.instance_health()}
    assert health == {("alive", True): 3}


def test_typed_errors(registry: Registry) -> None:
    epoch = registry.current_epoch()
    rec = record(epoch, "agent-x")
    registry.register_instance(rec)
    with pytest.raises(InvalidStatus):
        registry.set_instance_status(rec.instance_id, "sleeping")
    with pytest.raises(UnknownInstance):
        registry.set_instance_status(uuid.uuid4(), "alive")
    with pytest.raises(UnknownInstance):
        registry.deregister_instance(uuid.uuid4())
    with pytest.raises(FencedEpoch):
        registry.register_instance(record(uuid.uuid4(), "agent-y"))

    registry.set_instance_status(rec.instance_id, "draining")
    assert registry.beat(rec.instance_id, epoch) is True
    registry.deregister_instance(rec.instance_id)
    assert registry.beat(rec.instance_id, epoch) is False, "a beat never revives the dead"


def test_rotate_epoch_fences_old_instances(registry: Registry) -> None:
    old = registry.current_epoch()
    recs = [record(old, f"agent-{i}") for i in range(3)]
    for rec in recs:
        registry.register_instance(rec)
    assert registry.beat_many([r.instance_id for r in recs], old) == 3

    new = registry.rotate_epoch()
    assert new != old
    assert registry.current_epoch() == new
    assert registry.active_instances() == []
    with pytest.raises(FencedEpoch):
        registry.beat_many([r.instance_id for r in recs], old)
    with pytest.raises(FencedEpoch):
        registry.register_instance(record(old, "late"))
    assert registry.expire_old_epoch_instances() == 0, "rotation already fenced them"

    # The same actor rejoins under the new epoch.
    rejoined = InstanceRecord(recs[0].instance_id, recs[0].logical_id, new)
    registry.register_instance(rejoined)
    assert registry.beat(rejoined.instance_id, new) is True
    assert [r.instance_id for r in registry.active_instances()] == [rejoined.instance_id]


def test_expire_with_injected_time_and_self_preservation(registry: Registry) -> None:
    epoch = registry.current_epoch()
    t0 = datetime.now(UTC)
    recs = [record(epoch, f"agent-{i}") for i in range(10)]
    for rec in recs:
        registry.register_instance(rec, now=t0)
    assert registry.beat_many([r.instance_id for r in recs], epoch, now=t0) == 10

    later = t0 + timedelta(seconds=20)
    registry.beat_many([r.instance_id for r in recs[:3]], epoch, now=later)
    held = registry.expire_stale(now=later)
    assert held.held_back and held.expired == 0 and (held.candidates, held.live) == (7, 10)
    assert status_counts_via(registry) == {"alive": 10}

    forced = registry.expire_stale(force=True, now=later)
    assert (forced.expired, forced.held_back) == (7, False)
    assert registry.expire_stale(timeout=3600, now=later).expired == 0
    assert status_counts_via(registry) == {"alive": 3, "dead": 7}


def status_counts_via(registry: Registry) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in registry.instance_health():
        counts[row.status] = counts.get(row.status, 0) + row.instances
    return counts


def test_concurrent_register_beat_expire_no_lost_or_duplicated_rows(pg_dsn: str) -> None:
    """Four writers register overlapping ids and beat while expiry passes run."""
    with Registry(pg_dsn, max_size=2) as setup:
        epoch = setup.current_epoch()
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
                    assert reg.expire_stale().expired == 0
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

    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(probe("count_instances")).fetchone()
    expected = 40 + 4 * 60
    assert row == (expected, expected), "every instance exactly once"
    assert status_counts(pg_dsn) == {"alive": expected}
    with Registry(pg_dsn) as reg:
        active = reg.active_instances()
    assert len(active) == expected
    assert len({a.logical_id for a in active}) == expected


def test_registration_racing_rotation_is_always_fenced(pg_dsn: str) -> None:
    """No instance stays live under an old epoch, whatever the interleaving."""
    with Registry(pg_dsn) as reg:
        epoch = reg.current_epoch()
        registering = threading.Event()
        rotated = threading.Event()

        def rotate() -> None:
            registering.wait(30)
            reg.rotate_epoch()
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
        health = reg.instance_health()
    assert fenced == 5 and registered >= 20
    stragglers = [h for h in health if not h.is_current_epoch and h.status != "dead"]
    assert stragglers == []
    fenced_rows = sum(h.instances for h in health if not h.is_current_epoch)
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
            reg.current_epoch,
        ):
            t = time.monotonic()
            with pytest.raises(RegistryUnavailable):
                call()
            assert time.monotonic() - t < 2.0
    finally:
        reg.close()


def test_retries_after_the_server_dropped_its_sessions(registry: Registry, pg_dsn: str) -> None:
    epoch = registry.current_epoch()  # the pool now holds a live session
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        killed = conn.execute(probe("terminate_other_sessions")).fetchone()
    assert killed is not None and killed[0] >= 1
    assert registry.current_epoch() == epoch, "a broken pooled session is retried"


def test_unmigrated_database_is_a_config_error(pg_empty_dsn: str) -> None:
    with Registry(pg_empty_dsn) as reg, pytest.raises(ConfigError, match="migrate"):
        reg.current_epoch()


def test_runtime_role_uses_the_api_but_cannot_write_tables(pg_dsn: str) -> None:
    runtime_dsn = as_role(pg_dsn, "seedcore_runtime")
    with Registry(runtime_dsn) as reg:
        epoch = reg.current_epoch()
        rec = record(epoch, "agent-r")
        reg.register_instance(rec)
        assert reg.beat_many([rec.instance_id], epoch) == 1
        assert [a.logical_id for a in reg.active_instances()] == ["agent-r"]
        assert reg.expire_stale().expired == 0
    with psycopg.connect(runtime_dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(probe("insert_instance_directly"), (uuid.uuid4(),))


def test_bi_role_reads_views_only(pg_dsn: str) -> None:
    with Registry(pg_dsn) as owner:
        epoch = owner.current_epoch()
        rec = record(epoch, "agent-bi")
        owner.register_instance(rec)
        owner.beat(rec.instance_id, epoch)
    bi_dsn = as_role(pg_dsn, "seedcore_bi")
    with Registry(bi_dsn) as bi:
        assert [a.instance_id for a in bi.active_instances()] == [rec.instance_id]
        assert sum(h.instances for h in bi.instance_health()) == 1
        with pytest.raises(ConfigError, match="privilege"):
            bi.beat(rec.instance_id, epoch)
    with psycopg.connect(bi_dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(probe("select_instances_directly"))
