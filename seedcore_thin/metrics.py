"""Prometheus metrics of one manager: reconcile passes, routing, the registry's own figures.

Every manager has its own ``CollectorRegistry``, so two managers (or two tests) in one
process never collide. Figures that cost a read are taken at scrape time: the lease, the
tasks in flight, and ``seedcore.instance_health`` (cached ``HEALTH_TTL_S``, within the
registry client's 1.5 s budget). ``docs/metrics.md`` lists every metric.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from seedcore_thin.errors import DispatchFailed, NoQualifiedAgent
from seedcore_thin.planner import RULE_UNMANAGED_NAME

if TYPE_CHECKING:
    from seedcore_thin.reconciler import ApplyReport

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
HEALTH_TTL_S = 5.0
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ROUTE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
AGENT_GAUGES = {
    "desired": "Valid agents the graph asks for (last pass with the graph reachable).",
    "running": "Agents in sync or started by the last pass.",
    "pending": "Agents waiting for placement or for their setup.",
    "invalid": "Graph entries that are not a valid spec (skipped, their actor kept).",
}
F = TypeVar("F", bound=Callable[..., Any])
Rows = Sequence[Mapping[str, Any]]


class Metrics:
    """The metric objects, and the sources read at scrape time (all optional)."""

    def __init__(
        self,
        *,
        lease_held: Callable[[], bool] = bool,
        in_flight: Callable[[], Mapping[str, int]] = dict,
        health: Callable[[], Rows] = list,
    ) -> None:
        r = self.registry = CollectorRegistry()
        self.pass_seconds = Histogram(
            "seedcore_reconcile_pass_seconds",
            "Duration of one reconcile pass.",
            buckets=PASS_BUCKETS,
            registry=r,
        )
        self.last_pass = Gauge(
            "seedcore_reconcile_last_pass_timestamp_seconds",
            "Unix time the last reconcile pass finished.",
            registry=r,
        )
        self.actions = Counter(
            "seedcore_reconcile_actions_total",
            "Reconcile steps carried out.",
            ["kind", "outcome"],
            registry=r,
        )
        self.agents = {
            k: Gauge(f"seedcore_agents_{k}", doc, registry=r) for k, doc in AGENT_GAUGES.items()
        }
        self.up = Gauge(
            "seedcore_backend_up",
            "1 when the watch loop's last check reached the backend.",
            ["backend"],
            registry=r,
        )
        Gauge(
            "seedcore_reconcile_lease_held",
            "1 while this process holds the leader lock.",
            registry=r,
        ).set_function(lambda: float(lease_held()))
        self.decisions = Counter(
            "seedcore_routing_decisions_total",
            "Tasks routed, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "seedcore_routing_decision_seconds",
            "Time to choose the agent of a routed task.",
            buckets=ROUTE_BUCKETS,
            registry=r,
        )
        r.register(_ScrapeTime(in_flight, health))

    def observe_pass(self, report: ApplyReport, seconds: float) -> None:
        """Record one finished pass: its duration, its steps, the agent counts of its plan."""
        self.pass_seconds.observe(seconds)
        self.last_pass.set_to_current_time()
        for o in report.outcomes:
            self.actions.labels(o.action.kind, o.outcome).inc()
        p = report.plan
        if not p.graph_reachable:  # the counts would be zeros that mean nothing
            return
        started = Tally(
            o.outcome for o in report.outcomes if o.action.kind in ("create", "replace")
        )
        # every desired agent is in exactly one bucket: in sync, pending, a start, or held
        held = sum(
            h.action.kind in ("create", "replace") or h.rule == RULE_UNMANAGED_NAME
            for h in p.held_back
        )
        counts = {
            "desired": len(p.in_sync) + len(p.pending) + len(p.create) + len(p.replace) + held,
            "running": len(p.in_sync) + started["succeeded"],
            "pending": len(p.pending) + started["pending"],
            "invalid": len(p.invalid),
        }
        for key, n in counts.items():
            self.agents[key].set(n)


def observe_routing(execute: F) -> F:
    """Wraps ``Router.execute``: counts each task by outcome and times routed decisions."""

    @functools.wraps(execute)
    def observed(router: Any, task: Any) -> Any:
        metrics: Metrics | None = router.metrics
        if metrics is None:
            return execute(router, task)
        try:
            routed = execute(router, task)
        except (NoQualifiedAgent, DispatchFailed) as exc:
            failed = isinstance(exc, DispatchFailed)
            metrics.decisions.labels("failed_delivery" if failed else "refused").inc()
            raise
        decision = routed.decision
        outcome = "routed" if decision.live_source == "registry" else "ray_fallback"
        metrics.decisions.labels(outcome).inc()
        metrics.decision_seconds.observe(decision.latency_ms / 1000.0)
        return routed

    return cast(F, observed)


class _ScrapeTime:
    """Figures read when scraped: tasks in flight, and instance_health (cached)."""

    def __init__(self, in_flight: Callable[[], Mapping[str, int]], health: Callable[[], Rows]):
        self.in_flight, self.health = in_flight, health
        self._lock = threading.Lock()
        self._rows: Rows = []
        self._read_at = float("-inf")

    def describe(self) -> list[Metric]:
        return []  # registering must not read the registry

    def collect(self) -> Iterator[Metric]:
        flight = GaugeMetricFamily(
            "seedcore_routing_in_flight", "Tasks in flight per agent.", labels=["agent_id"]
        )
        for agent_id, n in sorted(self.in_flight().items()):
            flight.add_metric([agent_id], n)
        yield flight
        yield from self._health()

    def _health(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= HEALTH_TTL_S:
                try:
                    self._rows = list(self.health())
                except Exception as exc:  # no figures this time; the watch loop says why
                    log.debug("instance_health unreadable: %s", exc)
                    self._rows = []
                self._read_at = time.monotonic()
            rows = self._rows
        by = ["status", "epoch"]
        count = GaugeMetricFamily("seedcore_registry_instances", "Instances.", labels=by)
        stale = GaugeMetricFamily("seedcore_registry_stale_instances", "Stale ones.", labels=by)
        newest = GaugeMetricFamily(
            "seedcore_registry_newest_heartbeat_timestamp_seconds",
            "Unix time of the newest heartbeat in the current epoch.",
            labels=["status"],
        )
        totals: Tally[tuple[str, str, str]] = Tally()  # fenced epochs summed: few label values
        for row in rows:
            epoch = "current" if row["is_current_epoch"] else "fenced"
            totals["instances", row["status"], epoch] += row["instances"]
            totals["stale_instances", row["status"], epoch] += row["stale_instances"]
            if row["is_current_epoch"] and row["newest_heartbeat"] is not None:
                newest.add_metric([row["status"]], row["newest_heartbeat"].timestamp())
        for (column, *key), n in sorted(totals.items()):
            (count if column == "instances" else stale).add_metric(key, n)
        yield from (count, stale, newest)


def start_server(registry: CollectorRegistry, port: int, host: str = LOOPBACK) -> WSGIServer:
    """Serve ``registry`` at ``http://host:port/metrics`` in a daemon thread (port 0: any)."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    log.info("metrics at http://%s:%d/metrics", host, server.server_port)
    return server
