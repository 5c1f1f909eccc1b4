"""The reconciler against real Ray, FalkorDB and PostgreSQL.

Fleets are small and agents ask for 0.1 CPU: each actor costs about a second of CPU here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import ray

from seedcore_thin import actors
from seedcore_thin.errors import LeaderLockHeld
from seedcore_thin.graph import remove_agent, upsert_agent
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.falkordb import start_falkordb, stop_falkordb
from seedcore_thin.planner import RULE_EMPTY_GRAPH, RULE_GRAPH_UNREACHABLE
from seedcore_thin.reconciler import Reconciler
from seedcore_thin.registry import Registry
from seedcore_thin.specs import AgentSpec
from tests.fixtures_graph import MockGraph
from tests.fixtures_pg import TcpProxy, admin_registry
from tests.fixtures_ray import free_port, ray_env, wait_until

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parent.parent


def spec(agent_id: str, **extra: Any) -> AgentSpec:
    return AgentSpec(
        agent_id=agent_id,
        organ_id="test",
        skills=["echo"],
        resources={"num_cpus": 0.1, **extra.pop("resources", {})},
        **extra,
    )


def running(ns: str) -> dict[str, str]:
    """Managed agents answering in ``ns`` (in their own actor or a pool host): id -> hash."""
    return {
        agent["agent_id"]: str(agent["spec_hash"])
        for f in actors.describe_all(actors.named_actors([ns]), timeout_s=5)
        if f.info is not None
        for agent in actors.agents_of(f.info)
    }


def live(dsn: str, ns: str) -> dict[str, str]:
    """active_instance rows of ``ns``: agent id -> instance id."""
    with Registry(dsn) as reg:
        return {
            a.logical_id: str(a.instance_id) for a in reg.active_instances() if a.namespace == ns
        }


def runs(dsn: str) -> list[dict[str, Any]]:
    with admin_registry(dsn) as reg:
        rows: list[dict[str, Any]] = reg.call("reconcile_runs_recent", limit=50)
        return rows


@pytest.fixture
def dead_dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1"


# ---------------------------------------------------------------- the example fleet


def test_example_fleet_create_replace_remove(
    fleet_graph: FalkorDBGraphClient, pg_dsn: str, ray_namespace: str
) -> None:
    ns = ray_namespace
    rec = Reconciler(fleet_graph, pg_dsn=pg_dsn, namespace=ns, beat_sec=1.0)
    try:
        fleet = {s.agent_id: s for s in fleet_graph.list_agent_specs()}
        first = rec.plan()
        assert {a.agent_id for a in first.create} == set(fleet)

        report = rec.reconcile()
        outcome = {o.action.agent_id: o for o in report.outcomes}
        gpu = outcome.pop("vision-gpu-1")
        assert gpu.outcome == "pending" and "GPU=1" in gpu.detail["pending_reason"]
        assert {o.outcome for o in outcome.values()} == {"succeeded"}, report.to_json()
        assert report.status == "succeeded" and report.run_id is not None
        assert running(ns) == {a: fleet[a].spec_hash() for a in outcome}
        assert set(live(pg_dsn, ns)) == set(outcome)  # registered by the relay

        again = rec.plan()
        assert not again.has_changes
        assert [e.agent_id for e in again.pending] == ["vision-gpu-1"]
        assert "GPU" in (again.pending[0].reason or "")

        # skills of one agent, resources of another -> exactly those two are replaced
        yolo = fleet["yolo-detector-1"]
        upsert_agent(fleet_graph, yolo.model_copy(update={"skills": [*yolo.skills, "tracking"]}))
        llm = fleet["llm-summarizer-1"]
        more = llm.resources.model_copy(update={"num_cpus": 0.3})
        upsert_agent(fleet_graph, llm.model_copy(update={"resources": more}))
        changed = rec.plan()
        assert [a.agent_id for a in changed.replace] == ["llm-summarizer-1", "yolo-detector-1"]
        assert not changed.create and not changed.remove
        rec.reconcile()
        now = running(ns)
        new_specs = {s.agent_id: s for s in fleet_graph.list_agent_specs()}
        assert now["yolo-detector-1"] == new_specs["yolo-detector-1"].spec_hash()
        assert now["llm-summarizer-1"] == new_specs["llm-summarizer-1"].spec_hash()

        # leave the graph -> removed
        remove_agent(fleet_graph, "web-researcher-1")
        gone = rec.plan()
        assert [a.agent_id for a in gone.remove] == ["web-researcher-1"]
        rec.reconcile()
        assert "web-researcher-1" not in running(ns)
        assert [r["status"] for r in runs(pg_dsn)] == ["succeeded"] * 3
    finally:
        rec.close()


def test_invalid_spec_is_reported_and_its_running_actor_kept(
    fleet_graph: FalkorDBGraphClient, pg_dsn: str, ray_namespace: str
) -> None:
    """A hand edit that breaks a spec never takes its agent down; fixing it needs no restart."""
    ns = ray_namespace
    rec = Reconciler(fleet_graph, pg_dsn=pg_dsn, namespace=ns, beat_sec=1.0)
    try:
        rec.reconcile()
        before = running(ns)
        assert "risk-scorer-1" in before

        corrupt = ROOT / "cypher" / "fixtures" / "tests" / "corrupt_agent_cpus.cypher"
        fleet_graph.execute_statement(corrupt.read_text(), {"agent_id": "risk-scorer-1"})
        broken = rec.plan()
        assert [(i.agent_id, i.field) for i in broken.invalid] == [("risk-scorer-1", "num_cpus")]
        assert not broken.remove and not broken.replace and not broken.create
        report = rec.reconcile()
        assert report.ok
        assert running(ns) == before  # same actors, same spec hashes: nothing was touched
    finally:
        rec.close()


# ---------------------------------------------------------------- strict mode


@ray.remote
class Foreign:
    """Someone else's actor living in our namespace."""

    def hello(self) -> str:
        return "hi"


def test_strict_mode_archives_an_unmanaged_actor(
    pg_dsn: str, ray_namespace: str, mock_graph: MockGraph
) -> None:
    ns = ray_namespace
    graph = mock_graph([spec("s1"), spec("s2")])
    handle = Foreign.options(
        name="intruder", namespace=ns, lifetime="detached", num_cpus=0
    ).remote()
    assert ray.get(handle.hello.remote(), timeout=60) == "hi"
    loose = Reconciler(graph, pg_dsn=pg_dsn, namespace=ns)
    try:
        loose.reconcile()
        assert "intruder" in {n for _, n in actors.named_actors([ns])}
    finally:
        loose.close()

    strict = Reconciler(graph, pg_dsn=pg_dsn, namespace=ns, strict=True)
    try:
        p = strict.plan()
        assert [a.agent_id for a in p.archive] == ["intruder"] and not p.remove
        report = strict.reconcile()
        assert [o.outcome for o in report.outcomes] == ["succeeded"]
        assert "intruder" not in {n for _, n in actors.named_actors([ns])}
        assert set(running(ns)) == {"s1", "s2"}
        with admin_registry(pg_dsn) as reg:
            steps = reg.call("reconcile_actions_of_run", run_id=report.run_id)
        assert [(r["kind"], r["agent_id"], r["outcome"]) for r in steps] == [
            ("archive", "intruder", "succeeded")
        ]
    finally:
        strict.close()


# ---------------------------------------------------------------- safety rules


def test_graph_down_removes_nothing_and_empty_graph_is_held_back(
    tmp_path: Path, pg_dsn: str, ray_namespace: str, mock_graph: MockGraph
) -> None:
    ns = ray_namespace
    uri = start_falkordb(tmp_path / "graph")
    client = FalkorDBGraphClient(f"{uri}/safety")
    try:
        migrate_graph(client)
        for s in (spec("g1"), spec("g2")):
            upsert_agent(client, s)
        rec = Reconciler(client, pg_dsn=pg_dsn, namespace=ns)
        rec.reconcile()
        assert set(running(ns)) == {"g1", "g2"}

        stop_falkordb(tmp_path / "graph")  # the graph goes down
        report = rec.reconcile()
        assert not report.plan.graph_reachable
        assert report.outcomes == [] and not report.plan.remove
        assert {h.rule for h in report.plan.held_back} == {RULE_GRAPH_UNREACHABLE}
        assert set(running(ns)) == {"g1", "g2"}

        rec.graph = mock_graph([])  # reachable, but empty
        report = rec.reconcile()
        assert report.outcomes == []
        assert {h.rule for h in report.plan.held_back} == {RULE_EMPTY_GRAPH}
        assert set(running(ns)) == {"g1", "g2"}
        rec.close()

        brave = Reconciler(mock_graph([]), pg_dsn=pg_dsn, namespace=ns,
                           allow_mass_removal=True)  # fmt: skip
        assert {a.agent_id for a in brave.reconcile().plan.remove} == {"g1", "g2"}
        assert running(ns) == {}
        brave.close()
    finally:
        client.close()
        stop_falkordb(tmp_path / "graph")


# ---------------------------------------------------------------- leader lock


def test_two_reconcilers_only_one_applies(
    pg_dsn: str, ray_namespace: str, mock_graph: MockGraph
) -> None:
    graph = mock_graph([spec("solo")])
    first = Reconciler(graph, pg_dsn=pg_dsn, namespace=ray_namespace, holder="first")
    second = Reconciler(graph, pg_dsn=pg_dsn, namespace=ray_namespace, holder="second")
    results: dict[str, Any] = {}
    gate = threading.Barrier(2)

    def go(name: str, rec: Reconciler) -> None:
        gate.wait()
        try:
            results[name] = rec.reconcile()
        except LeaderLockHeld as exc:
            results[name] = exc

    try:
        threads = [threading.Thread(target=go, args=a) for a in (("1", first), ("2", second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        held = [r for r in results.values() if isinstance(r, LeaderLockHeld)]
        applied = [r for r in results.values() if not isinstance(r, LeaderLockHeld)]
        assert len(held) == 1 and len(applied) == 1, results
        assert held[0].holder in ("first", "second")
        assert "held by" in str(held[0])
        assert [o.outcome for o in applied[0].outcomes] == ["succeeded"]
        assert set(running(ray_namespace)) == {"solo"}
        assert len(runs(pg_dsn)) == 1
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------- crash mid-apply

CRASHING_RECONCILER = """
import sys, ray
from seedcore_thin.graph import connect_graph
from seedcore_thin.reconciler import Reconciler
address, uri, dsn, ns = sys.argv[1:]
ray.init(address=address, log_to_driver=False)
rec = Reconciler(connect_graph(uri), pg_dsn=dsn, namespace=ns, concurrency=1, lease_ttl_s=2)
print("applying", flush=True)
rec.reconcile()
print("finished", flush=True)
"""


def test_reconciler_killed_mid_apply_next_pass_converges(
    ray_session: str, graph: FalkorDBGraphClient, graph_uri: str, pg_dsn: str,
    ray_namespace: str,
) -> None:  # fmt: skip
    ns = ray_namespace
    wanted = {f"k{i}" for i in range(4)}
    for agent in sorted(wanted):
        upsert_agent(graph, spec(agent))
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RECONCILER, ray_session, graph_uri, pg_dsn, ns],
        env=ray_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: bool(running(ns)), 90, "the first agent")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"finished" not in (proc.stdout.read() if proc.stdout else b"")
    assert set(running(ns)) < wanted  # really mid-apply

    rec = Reconciler(graph, pg_dsn=pg_dsn, namespace=ns, beat_sec=1.0)
    try:
        deadline = time.monotonic() + 10
        while True:  # the dead reconciler's 2 s lease must expire first
            try:
                report = rec.reconcile()
                break
            except LeaderLockHeld:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert report.status == "succeeded"
        assert set(running(ns)) == wanted  # nothing missing, nothing extra
        assert not rec.plan().has_changes
        statuses = [r["status"] for r in runs(pg_dsn)]
        assert statuses == ["succeeded", "abandoned"]  # newest first; nothing left running
        wait_until(lambda: set(live(pg_dsn, ns)) == wanted, 10, "every agent registered")
    finally:
        rec.close()


# ---------------------------------------------------------------- registry down


def test_registry_down_converges_through_ray_discovery(
    dead_dsn: str, ray_namespace: str, mock_graph: MockGraph
) -> None:
    ns = ray_namespace
    graph = mock_graph([spec("r1"), spec("r2")])
    rec = Reconciler(graph, pg_dsn=dead_dsn, namespace=ns, holder="ray-locked")
    other = Reconciler(graph, pg_dsn=dead_dsn, namespace=ns)
    try:
        started = time.monotonic()
        report = rec.reconcile(keep_lock=True)
        assert [o.outcome for o in report.outcomes] == ["succeeded", "succeeded"]
        assert any("registry" in w for w in report.warnings)
        assert set(running(ns)) == {"r1", "r2"}
        with pytest.raises(LeaderLockHeld) as held:  # the Ray fallback lock
            other.reconcile()
        assert held.value.holder == "ray-locked"
        rec.release()
        again = other.plan()  # a fresh process-less view: only Ray's discovery
        assert {e.agent_id for e in again.in_sync} == {"r1", "r2"} and not again.has_changes
        assert time.monotonic() - started < 60
    finally:
        rec.close()
        other.close()


# ---------------------------------------------------------------- liveness


def test_heartbeats_dead_agent_leaves_and_registry_comeback_reregisters(
    pg_dsn: str, pg_proxy_dsn: tuple[str, TcpProxy], ray_namespace: str, mock_graph: MockGraph
) -> None:
    ns = ray_namespace
    beat = 1.0
    proxied, proxy = pg_proxy_dsn
    rec = Reconciler(
        mock_graph([spec("h1"), spec("h2"), spec("h3")]),
        pg_dsn=proxied, namespace=ns, beat_sec=beat,
    )  # fmt: skip
    try:
        rec.reconcile()
        before = live(pg_dsn, ns)
        assert set(before) == {"h1", "h2", "h3"}

        ray.kill(ray.get_actor("h3", namespace=ns))
        took = wait_until(lambda: "h3" not in live(pg_dsn, ns), 3 * beat + 2, "h3 leaving")
        assert took <= 3 * beat + 2

        proxy.down()  # the registry blinks; meanwhile a DBA expires everyone
        with Registry(pg_dsn) as reg:
            reg.expire_stale(timeout=timedelta(0), force=True)
        assert live(pg_dsn, ns) == {}
        time.sleep(2 * beat)
        proxy.up()
        wait_until(lambda: set(live(pg_dsn, ns)) == {"h1", "h2"}, 10, "re-registration")
        after = live(pg_dsn, ns)
        assert after == {k: before[k] for k in ("h1", "h2")}  # same instances: no restart
    finally:
        rec.close()


# ---------------------------------------------------------------- the CLI


def cli(ray_address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**ray_env(), "RAY_ADDRESS": ray_address}
    env.pop("TIER0_STRICT_RECONCILE", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reconcile.py"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_cli_plan_apply_plan_exit_codes_and_json(
    ray_session: str, graph: FalkorDBGraphClient, graph_uri: str, pg_dsn: str,
    ray_namespace: str,
) -> None:  # fmt: skip
    import json

    upsert_agent(graph, spec("c1"))
    common = ["--namespace", ray_namespace, "--graph-uri", graph_uri, "--pg-dsn", pg_dsn]

    planned = cli(ray_session, "plan", "--json", *common)
    assert planned.returncode == 2, planned.stderr[-2000:]
    doc = json.loads(planned.stdout)
    for key in ("create", "replace", "remove", "archive", "in_sync", "held_back", "invalid"):
        assert isinstance(doc[key], list)
    assert [c["agent_id"] for c in doc["create"]] == ["c1"]

    applied = cli(ray_session, "apply", "--json", *common)
    assert applied.returncode == 0, applied.stderr[-2000:]
    report = json.loads(applied.stdout)
    assert [o["outcome"] for o in report["outcomes"]] == ["succeeded"]
    assert "\r[" not in applied.stderr  # no progress bar with --json
    assert set(running(ray_namespace)) == {"c1"}  # detached: outlives the CLI

    again = cli(ray_session, "plan", *common)
    assert again.returncode == 0 and "nothing to do" in again.stdout

    down = cli(ray_session, "plan", "--json", "--namespace", ray_namespace,
               "--graph-uri", f"falkordb://127.0.0.1:{free_port()}/gone")  # fmt: skip
    assert down.returncode == 1 and json.loads(down.stdout)["error"] == "GraphUnavailable"
