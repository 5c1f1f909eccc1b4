"""``Tier0Manager``: the original design's entry point, now a thin shell over the reconciler.

``attach_graph(client)``, ``reconcile_from_graph()``, ``start_graph_reconciler(interval)``
and ``stop_graph_reconciler()`` keep their names. The watch loop is level-triggered like a
Kubernetes controller: a cheap change check every second (the graph's desired-state version,
the registry's live set, Ray's named actors in scope) starts a pass when anything moved, and a
full pass every ``interval`` is the backstop. Like the Ray Serve controller, the loop never
lets an exception escape, times each step and warns when one is slow. It also prunes the
audit history (``AuditStore.prune_history``, bounded batches) every ``PRUNE_EVERY_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer

from seedcore_thin import actors, metrics
from seedcore_thin.config import Settings
from seedcore_thin.errors import ConfigError, LeaderLockHeld
from seedcore_thin.planner import Plan
from seedcore_thin.reconciler import ApplyReport, Progress, Reconciler
from seedcore_thin.router import RegistryLive, Router

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
SLOW_CHECK_S = 0.5
PRUNE_EVERY_S = 600.0


class Tier0Manager:
    """Owns one graph client, one reconciler and one router; at most one watch loop.

    Ray is joined on first use (``actors.connect``), unless this process already is.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        graph: Any = None,
        namespace: str | None = None,
        strict: bool | None = None,
        allow_mass_removal: bool = False,
        pg_dsn: str | None = None,
        **reconciler_options: Any,
    ) -> None:
        self.settings = settings = settings or Settings.from_env()
        self.graph: Any = graph
        self._options: dict[str, Any] = {  # the reconciler's, made when first needed
            "pg_dsn": pg_dsn or settings.pg_dsn,
            "namespace": namespace,
            "default_namespace": settings.namespace,
            "strict": settings.strict_reconcile if strict is None else strict,
            "allow_mass_removal": allow_mass_removal,
            "mass_removal_share": settings.mass_removal_share,
            "beat_sec": settings.beat_sec,
            "drain_grace_s": settings.drain_grace_s,
            "pool_max_agents": settings.pool_max_agents,
            **reconciler_options,
        }
        self._reconciler: Reconciler | None = None
        self._router: Router | None = None
        self._router_lock = threading.Lock()
        self._pass_lock = threading.Lock()
        self._loop_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_report: ApplyReport | None = None
        self.last_error: str | None = None
        self.passes = 0
        self.metrics = metrics.Metrics(
            lease_held=lambda: (rec := self._reconciler) is not None and rec.leads,
            in_flight=lambda: dict(router.in_flight) if (router := self._router) else {},
            health=self._instance_health,
        )
        self._metrics_server: WSGIServer | None = None

    # ------------------------------------------------------------------ wiring
    def attach_graph(self, client: Any) -> None:
        """Use ``client`` (any GraphClient, e.g. ``MockGraphClient(specs)``) as desired state."""
        with self._pass_lock:
            self.graph = client
            if self._reconciler is not None:
                self._reconciler.graph = client

    def _attached(self) -> Any:
        if self.graph is None:
            raise ConfigError("no graph attached: call attach_graph(client) first")
        return self.graph

    @property
    def reconciler(self) -> Reconciler:
        if self._reconciler is None:
            self._reconciler = Reconciler(self._attached(), **self._options)
        return self._reconciler

    # ------------------------------------------------------------------ one pass
    def plan(self) -> Plan:
        with self._pass_lock:
            return self.reconciler.plan()

    def reconcile_from_graph(
        self, *, progress: Progress | None = None, keep_lock: bool = False
    ) -> ApplyReport:
        """One pass: lock, plan, apply. Raises LeaderLockHeld when another reconciler leads."""
        with self._pass_lock:
            start = time.monotonic()
            report = self.reconciler.reconcile(progress=progress, keep_lock=keep_lock)
            self.metrics.observe_pass(report, time.monotonic() - start)
            self.last_report = report
            self.passes += 1
            return report

    def change_token(self) -> tuple[Any, ...]:
        """What the watch loop compares each second; cheap (three small reads). The live
        set's part is the registry's change counter: an instance that merely falls silent
        moves it when ``expire_stale`` marks it dead, and the full pass is the backstop."""
        store = self.reconciler.store
        up = self.metrics.up.labels
        live = _or_unreachable(store.live_version, up("registry")) if store else None
        names = tuple(actors.named_actors(self._watched_namespaces()))
        return (_or_unreachable(self.graph.version, up("graph")), live, names)

    def _watched_namespaces(self) -> set[str]:
        rec = self.reconciler
        if rec.scope:
            return {rec.scope}
        spaces = {rec.default_namespace}
        if self.last_report is not None:
            p = self.last_report.plan
            spaces |= {a.namespace for a in p.actions} | {e.namespace for e in p.in_sync}
        return spaces

    def _instance_health(self) -> list[dict[str, Any]]:
        """The registry's own figures for the metrics endpoint; none without a registry."""
        store = self._reconciler.store if self._reconciler is not None else None
        return store.registry.call("instance_health") if store is not None else []

    def prune_audit(self) -> int:
        """Runs deleted past the audit retention, in bounded batches; a failure only logs."""
        store = self.reconciler.store
        try:
            return store.prune_history() if store is not None else 0
        except Exception as exc:
            log.warning("pruning the reconcile history failed: %s", exc)
            return 0

    # ------------------------------------------------------------------ watch
    def start_graph_reconciler(self, interval: float = 15.0) -> None:
        """Start the watch loop in a daemon thread; a second call while running is a no-op."""
        with self._loop_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            store = self.reconciler.store
            if store is not None:  # the lease must outlive the gap between two passes
                store.lease_ttl = max(store.lease_ttl, 2 * interval + 5)
            self._thread = threading.Thread(
                target=self._watch, args=(interval,), name="tier0-reconciler", daemon=True
            )
            self._thread.start()

    def stop_graph_reconciler(self, timeout: float = 30.0) -> None:
        """Stop the loop, wait for the pass in progress, release the lease. Idempotent."""
        with self._loop_lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if self._reconciler is not None:
            with self._pass_lock:
                try:
                    self._reconciler.release()
                except Exception as exc:
                    log.warning("releasing the reconcile lease failed: %s", exc)

    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _watch(self, interval: float) -> None:
        last_token: tuple[Any, ...] | None = None
        next_full = next_prune = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            token = self._timed("change check", self.change_token, SLOW_CHECK_S)
            if token is None or token != last_token or time.monotonic() >= next_full:
                # Remember what the pass started from, not what it left: a change that lands
                # during the pass (or the pass's own work) triggers one more, verifying pass.
                last_token = token
                self._timed("reconcile pass", self._watch_pass, interval)
                next_full = time.monotonic() + interval
            if time.monotonic() >= next_prune:  # the first right after the first pass
                self._timed("audit prune", self.prune_audit, SLOW_CHECK_S)
                next_prune = time.monotonic() + PRUNE_EVERY_S
            self._stop.wait(max(0.0, CHECK_EVERY_S - (time.monotonic() - started)))

    def _watch_pass(self) -> None:
        try:
            report = self.reconcile_from_graph(keep_lock=True)
            self.last_error = None
            if report.plan.has_changes:
                log.info("reconciled: %s -> %s", report.plan.summary(), report.status)
        except LeaderLockHeld as exc:
            self.last_error = str(exc)
            log.info("standing by: %s", exc)

    def _timed(self, what: str, fn: Callable[[], Any], slow_s: float) -> Any:
        """Run one step; never raise; warn when it took longer than ``slow_s``."""
        start = time.monotonic()
        try:
            return fn()
        except Exception as exc:
            self.last_error = f"{what}: {type(exc).__name__}: {exc}"
            log.exception("%s failed", what)
            return None
        finally:
            took = time.monotonic() - start
            if took > slow_s:
                log.warning("%s took %.2f s (slow)", what, took)

    # ------------------------------------------------------------------ routing
    @property
    def router(self) -> Router:
        """The router of this manager's graph, registry (``pg_dsn``) and namespace.

        One per manager, so in-flight counts and caches are shared by all of its callers;
        made again when the graph is replaced. It reads the live set through the reconciler's
        registry client (one pool per manager); without a DSN, liveness comes from Ray alone.
        """
        with self._router_lock:
            graph, rec = self._attached(), self.reconciler
            if self._router is None or self._router.graph is not graph:
                ns = rec.default_namespace
                live = RegistryLive(rec.store.registry, ns) if rec.store is not None else None
                self._router = Router(graph, live, namespace=ns)
                self._router.metrics = self.metrics
            return self._router

    def execute_task_on_graph_best(self, task: Any) -> Any:
        """Run ``task`` on the best qualified live agent; a ``router.RoutedResult``."""
        return self.router.execute(task)

    def explain_task(self, task: Any) -> dict[str, list[str]]:
        """Every agent's reasons not to take ``task``; an empty list means it qualifies."""
        return self.router.explain(task)

    def list_agents(self) -> list[str]:
        """The ids of the attached graph's valid agent specs, sorted (SeedCore's tier0
        ``list_agents()`` also returned ids); ``self.graph.list_agent_specs()`` has the rest."""
        return [spec.agent_id for spec in self._attached().list_agent_specs()]

    def start_metrics_server(self, port: int = 0, host: str = metrics.LOOPBACK) -> int:
        """Serve this manager's metrics at ``http://host:port/metrics``, on loopback unless
        ``host`` widens it (``0.0.0.0``); returns the port (``0``: a free one). Once only."""
        if self._metrics_server is None:
            self._metrics_server = metrics.start_server(self.metrics.registry, port, host)
        return self._metrics_server.server_port

    def close(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        self.stop_graph_reconciler()
        with self._router_lock:
            self._router = None
        if self._reconciler is not None:
            self._reconciler.close()
            self._reconciler = None


def _or_unreachable(read: Callable[[], Any], up: Any) -> Any:
    """A change-token part: the value read, or a marker that changes when the error does;
    ``up`` (a gauge) says which."""
    try:
        value = read()
    except Exception as exc:
        up.set(0)
        return f"unreachable: {type(exc).__name__}"
    up.set(1)
    return value


_manager: Tier0Manager | None = None
_manager_lock = threading.Lock()


def get_tier0_manager() -> Tier0Manager:
    """The process-wide manager (settings from the environment), created on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = Tier0Manager()
        return _manager
