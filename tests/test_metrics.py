"""The Prometheus endpoint, scraped over HTTP during real reconciles and routed tasks
(real PostgreSQL, FalkorDB and Ray), and its table in docs/metrics.md."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from seedcore_thin.config import Settings
from seedcore_thin.errors import NoQualifiedAgent
from seedcore_thin.graph import upsert_agent
from seedcore_thin.graph.falkordb import FalkorDBGraphClient, MockGraphClient
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.metrics import Metrics
from seedcore_thin.specs import AgentSpec
from tests.fixtures_pg import TcpProxy
from tests.fixtures_ray import free_port, ray_env, wait_until

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "metrics.md"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(families: Iterable[Metric]) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def scrape(port: int, host: str = "127.0.0.1") -> Samples:
    """Every sample of the endpoint, parsed by prometheus_client's own text parser."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as answer:
        return samples_of(text_string_to_metric_families(answer.read().decode()))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample ``seedcore_NAME{labels}``, None when absent."""
    return samples.get((f"seedcore_{name}", frozenset(labels.items())))


def in_flight(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "seedcore_routing_in_flight")


def refused(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def spec(agent_id: str) -> AgentSpec:
    return AgentSpec(
        agent_id=agent_id,
        organ_id="metrics",
        skills=["count"],
        resources={"num_cpus": 0.1},
        entrypoint="tests.agents_for_tests:Counter",
    )


def task(skill: str = "count", **data: Any) -> dict[str, Any]:
    return {"task_type": "t", "required_skills": [skill], "data": data, "timeout_s": 30}


# ---------------------------------------------------------------- the table in docs/metrics.md


def documented() -> dict[str, tuple[str, set[str]]]:
    """``| `name` | type | `label`, ... | meaning |`` rows of docs/metrics.md."""
    rows = re.findall(r"^\| `(seedcore_\w+)` \| (\w+) \|([^|]*)\|", DOC.read_text(), re.M)
    return {name: (kind, set(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    health = [  # one current and two fenced epochs: the fenced ones are summed
        {"is_current_epoch": True, "status": "alive", "instances": 3, "stale_instances": 1,
         "newest_heartbeat": datetime.now(UTC)},
        {"is_current_epoch": False, "status": "dead", "instances": 2, "stale_instances": 0,
         "newest_heartbeat": None},
        {"is_current_epoch": False, "status": "dead", "instances": 5, "stale_instances": 0,
         "newest_heartbeat": None},
    ]  # fmt: skip
    metrics = Metrics(in_flight=lambda: {"a1": 2}, health=lambda: health)
    metrics.decisions.labels("routed").inc()
    metrics.actions.labels("create", "succeeded").inc()
    metrics.up.labels("graph").set(1)
    families = {f.name: f for f in metrics.registry.collect()}
    exposed = {
        # prometheus_client names a counter family without its _total suffix
        (f"{name}_total" if f.type == "counter" else name): (
            f.type,
            {k for s in f.samples for k in s.labels if k != "le"},
        )
        for name, f in families.items()
    }
    assert exposed == documented()
    samples = samples_of(families.values())
    assert value(samples, "registry_instances", status="dead", epoch="fenced") == 7
    assert value(samples, "registry_stale_instances", status="alive", epoch="current") == 1
    assert value(samples, "routing_in_flight", agent_id="a1") == 2


# ---------------------------------------------------------------- a manager's endpoint


@pytest.mark.ray
def test_endpoint_follows_a_real_reconcile_and_real_routed_tasks(
    falkordb_server: str, ray_namespace: str, pg_dsn: str
) -> None:
    ns = ray_namespace
    proxy = TcpProxy(urlsplit(falkordb_server).port or 0)  # the graph, until we pull the plug
    graph = MockGraphClient([spec("m1"), spec("m2")], uri=f"falkordb://127.0.0.1:{proxy.port}")
    manager = Tier0Manager(
        Settings(pg_dsn=pg_dsn, namespace=ns, beat_sec=1.0), graph=graph, namespace=ns
    )
    other = Tier0Manager(Settings(pg_dsn=pg_dsn, namespace=ns), graph=graph, namespace=ns)
    try:
        port = manager.start_metrics_server(0)
        assert manager.start_metrics_server(0) == port  # once per manager
        # loopback only: 127.0.0.2 is this machine too, but the socket is bound to 127.0.0.1
        assert manager._metrics_server.server_address[0] == "127.0.0.1"
        assert refused("127.0.0.2", port) and not refused("127.0.0.1", port)
        # a second manager in the same process has its own registry and counts
        other_port = other.start_metrics_server(0)
        before = scrape(port)
        assert value(before, "reconcile_pass_seconds_count") == 0
        assert value(before, "reconcile_lease_held") == 0

        manager.start_graph_reconciler(interval=5.0)

        def reconciled() -> bool:
            s = scrape(port)
            created = value(s, "reconcile_actions_total", kind="create", outcome="succeeded")
            return (created or 0) >= 2 and value(s, "agents_running") == 2

        wait_until(reconciled, 90, "two agents created, as the endpoint says")
        s = scrape(port)
        assert (value(s, "reconcile_pass_seconds_count") or 0) >= 1
        assert (value(s, "reconcile_pass_seconds_sum") or 0) > 0
        assert value(s, "agents_desired") == 2
        assert value(s, "agents_invalid") == 0
        assert value(s, "reconcile_lease_held") == 1
        assert value(s, "backend_up", backend="graph") == 1
        assert value(s, "backend_up", backend="registry") == 1
        assert (value(s, "reconcile_last_pass_timestamp_seconds") or 0) > 0

        def alive_in_registry() -> bool:  # instance_health, cached for 5 s
            return value(scrape(port), "registry_instances", status="alive", epoch="current") == 2

        wait_until(alive_in_registry, 30, "instance_health figures on the endpoint")
        s = scrape(port)
        newest = value(s, "registry_newest_heartbeat_timestamp_seconds", status="alive")
        assert newest is not None and abs(newest - datetime.now(UTC).timestamp()) < 60
        assert value(s, "registry_stale_instances", status="alive", epoch="current") == 0

        # a routed task, a task in flight, a refused task
        routed = manager.execute_task_on_graph_best(task())
        assert routed.decision.live_source == "registry"
        slow = threading.Thread(target=manager.execute_task_on_graph_best, args=(task(sleep=4),))
        slow.start()
        wait_until(lambda: in_flight(scrape(port)) == 1, 3, "a task in flight")
        slow.join()
        with pytest.raises(NoQualifiedAgent):
            manager.execute_task_on_graph_best(task("no-such-skill"))
        s = scrape(port)
        assert value(s, "routing_decisions_total", outcome="routed") == 2
        assert value(s, "routing_decisions_total", outcome="refused") == 1
        assert value(s, "routing_decision_seconds_count") == 2
        assert in_flight(s) == 0  # done: no series left
        assert value(scrape(other_port), "routing_decisions_total", outcome="routed") is None

        # the graph goes away and comes back: the watch loop's check says so each second
        def graph_up() -> float | None:
            return value(scrape(port), "backend_up", backend="graph")

        proxy.down()
        wait_until(lambda: graph_up() == 0, 10, "graph down on the endpoint")
        assert value(scrape(port), "backend_up", backend="registry") == 1
        assert value(scrape(port), "agents_desired") == 2  # not zeroed by an outage
        proxy.up()
        wait_until(lambda: graph_up() == 1, 10, "graph back on the endpoint")

        manager.stop_graph_reconciler()
        assert value(scrape(port), "reconcile_lease_held") == 0
    finally:
        manager.close()
        other.close()
        graph.close()
        proxy.down()
    assert refused("127.0.0.1", port), "close() stops the server"


# ---------------------------------------------------------------- reconcile.py watch


@pytest.mark.ray
def test_watch_cli_serves_metrics_on_loopback(
    ray_session: str, graph: FalkorDBGraphClient, graph_uri: str, pg_dsn: str, ray_namespace: str
) -> None:
    upsert_agent(graph, spec("cli-1"))
    port = free_port()
    args = ["watch", "--metrics-port", str(port), "--interval", "5", "--namespace", ray_namespace,
            "--graph-uri", graph_uri, "--pg-dsn", pg_dsn]  # fmt: skip
    watch = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "reconcile.py"), *args],
        env={**ray_env(), "RAY_ADDRESS": ray_session}, cwd=ROOT, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def created() -> bool:
            assert watch.poll() is None, watch.stderr.read() if watch.stderr else ""
            try:
                s = scrape(port)
            except OSError:
                return False
            return value(s, "reconcile_actions_total", kind="create", outcome="succeeded") == 1

        wait_until(created, 120, "the watch's first pass on its endpoint")
        assert value(scrape(port), "reconcile_lease_held") == 1
        assert refused("127.0.0.2", port), "loopback by default"
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err[-2000:]
    assert f"metrics at http://127.0.0.1:{port}/metrics" in err
