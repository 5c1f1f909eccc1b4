"""Carries a plan out on Ray: leader lock, persisted intent, bounded concurrency, audit.

Level-triggered: every pass reads the desired state (graph) and the actual state (Ray's named
actors, asked to describe themselves) afresh, so a pass that died half way is finished by the
next one. Decisions are the planner's and SQL lives in ``sql/``; this module sequences the I/O
(``apply`` reads as the list): the intent is persisted (``begin_run``) before Ray is touched,
steps run in a bounded pool with each failure isolated, recorded and retried after a backoff,
and the bookkeeping is closed last. The leader lock is a PostgreSQL lease fenced by the
cluster epoch, or a Ray named actor while the registry is down; then Ray alone says what runs
and the audit, lease and backoff history are skipped with a warning.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seedcore_thin import actors, config
from seedcore_thin.audit import AuditStore, LeaseLost, default_holder
from seedcore_thin.errors import (
    AgentSetupFailed,
    LeaderLockHeld,
    RegistryUnavailable,
    SeedcoreError,
)
from seedcore_thin.heartbeat import ensure_relay, register_live
from seedcore_thin.planner import (
    LOCK_NAME,
    POOL_PREFIX,
    Action,
    Actual,
    Desired,
    InvalidEntry,
    Plan,
    plan,
)
from seedcore_thin.registry import Registry
from seedcore_thin.specs import AgentSpec

log = logging.getLogger(__name__)

SYSTEM_NAMESPACE = "seedcore-system"
DESCRIBE_TIMEOUT_S = 2.0
# Registry down: a failed agent waits this long before its next try. The growing backoff
# (base, cap, formula) is seedcore.reconcile_backoff's alone, over the audit history.
OFFLINE_RETRY_S = 30.0
NOT_ANSWERING = "not answering yet (starting, or waiting for resources)"

Progress = Callable[[int, int, "Outcome"], None]


@dataclass(frozen=True)
class Outcome:
    """What happened to one step: succeeded, failed, pending (placed later) or skipped."""

    action: Action
    outcome: str
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0
    info: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out = {**self.action.to_json(), "outcome": self.outcome, "duration_ms": self.duration_ms}
        more = {"error": self.error, "pending_reason": self.detail.get("pending_reason")}
        return out | {key: value for key, value in more.items() if value}


@dataclass
class ApplyReport:
    """A pass: the plan, each step's outcome, the audit run id and status."""

    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)
    run_id: int | None = None
    status: str = "succeeded"
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome in ("failed", "skipped")]

    @property
    def ok(self) -> bool:
        return not self.failed and self.status != "failed"

    def skip(self, steps: Iterable[Action], lost: str) -> None:
        self.outcomes += [Outcome(a, "skipped", f"lease lost: {lost}") for a in steps]

    def to_json(self) -> dict[str, Any]:
        outcomes = [o.to_json() for o in self.outcomes]
        return {**vars(self), "plan": self.plan.to_json(), "outcomes": outcomes}


class Reconciler:
    """Makes Ray's actors match the graph; one instance per reconciling process."""

    def __init__(
        self,
        graph: Any,
        *,
        pg_dsn: str | None = None,
        namespace: str | None = None,
        default_namespace: str | None = None,
        strict: bool = False,
        allow_mass_removal: bool = False,
        mass_removal_share: float = 0.5,
        beat_sec: float = 5.0,
        concurrency: int = 16,
        ready_timeout_s: float = 60.0,
        drain_grace_s: float = 30.0,
        lease_ttl_s: float = 30.0,
        holder: str | None = None,
        pool_max_agents: int | None = None,
    ) -> None:
        self.graph = graph
        self.scope = namespace
        self.default_namespace = namespace or default_namespace or config.default_namespace()
        self.strict = strict
        self.allow_mass_removal = allow_mass_removal
        self.mass_removal_share = mass_removal_share
        self.beat_sec = beat_sec
        self.concurrency = max(1, concurrency)
        self.ready_timeout_s = ready_timeout_s
        self.drain_grace_s = drain_grace_s
        self.pool_max_agents = pool_max_agents or config.pool_max_agents()
        self.holder = holder or default_holder()
        self.pg_dsn = pg_dsn
        self.store: AuditStore | None = None
        if pg_dsn:
            self.store = AuditStore(Registry(pg_dsn), holder=self.holder, lease_ttl=lease_ttl_s)
        self._ray_lock: Any = None
        # Memory of this process, for when PostgreSQL is down.
        self._deployed: dict[tuple[str, str], str] = {}
        self._failures: dict[tuple[str, str], tuple[int, float, str]] = {}
        # Where each agent lives (its own actor, or a pool host), from the last read_actual
        # and this pass's starts; and the pool hosts that may be empty (removed after apply).
        self._homes: dict[tuple[str, str], str] = {}
        self._maybe_empty: set[tuple[str, str]] = set()

    def _from_store(self, what: str, call: Callable[[AuditStore], Any], default: Any) -> Any:
        """``call(store)``, or ``default`` when there is no registry or it is down."""
        if self.store is None:
            return default
        try:
            return call(self.store)
        except RegistryUnavailable as exc:
            log.warning("registry unavailable for %s: %s", what, exc)
            return default

    # ------------------------------------------------------------------ state
    def read_desired(self) -> tuple[list[Desired], list[InvalidEntry], bool]:
        """Valid specs as Desired, invalid ones, and whether the graph answered at all."""
        try:
            result = self.graph.read_agent_specs()
        except Exception as exc:  # GraphUnavailable or anything else: treat as unreachable
            log.warning("graph unreachable, nothing will be removed: %s", exc)
            return [], [], False
        desired = [
            Desired(
                s.agent_id,
                actors.namespace_of(s, self.default_namespace),
                s.spec_hash(),
                s,
                actors.home_of(s),
            )
            for s in result.valid
        ]
        invalid = [InvalidEntry(i.agent_id, i.field, i.reason) for i in result.invalid]
        if self.scope is not None:
            desired = [d for d in desired if d.namespace == self.scope]
        return desired, invalid, True

    def read_actual(self, desired: Iterable[Desired]) -> list[Actual]:
        """Agents in scope, from Ray itself (works with the registry down): each named actor
        of ours is one agent, or a pool host with many."""
        want = {(d.namespace, d.agent_id): d for d in desired}
        deployed = dict(self._deployed)
        deployed.update(self._from_store("deployed", lambda s: s.deployed(self.scope), {}))
        spaces = {ns for ns, _ in [*want, *deployed]} | {self.default_namespace}
        if self.scope is not None:
            spaces = {self.scope}
        totals = actors.cluster_totals()
        unplaceable = {  # known to need what the cluster lacks: pending, not waited for
            key: problem
            for key, d in want.items()
            if isinstance(d.spec, AgentSpec)
            and (problem := actors.placement_problem(d.spec, totals))
        }
        out: list[Actual] = []
        silent: set[tuple[str, str]] = set()  # pools with a host not answering (yet)
        self._homes = {}
        for found in actors.describe_all(
            actors.named_actors(spaces), timeout_s=DESCRIBE_TIMEOUT_S, unplaceable=unplaceable
        ):
            name, ns, info = found.name, found.namespace, found.info
            if info is not None:
                hosted = actors.agents_of(info)
                out += [self._actual(ns, name, agent) for agent in hosted]
                if not hosted:  # an empty pool host: removed at the end of the next apply
                    self._maybe_empty.add((ns, name))
            elif found.foreign:
                out.append(Actual(name, ns, None, False))
            elif (ns, name) in deployed or (ns, name) in want:
                reason = unplaceable.get((ns, name), NOT_ANSWERING)
                out.append(Actual(name, ns, deployed.get((ns, name)), True, "pending", reason))
            elif name.startswith(POOL_PREFIX):
                silent.add((ns, name.rpartition("-")[0]))
            # else: an unknown actor that does not answer: never touched on a guess
        seen = {(a.namespace, a.agent_id) for a in out}
        for key, d in want.items():  # pooled agents whose host may hold them: pending
            if key not in seen and (d.namespace, d.home) in silent:
                reason = unplaceable.get(key, NOT_ANSWERING)
                hash_ = deployed.get(key)
                out.append(Actual(d.agent_id, d.namespace, hash_, True, "pending", reason, d.home))
        return out

    def _actual(self, namespace: str, name: str, info: Mapping[str, Any]) -> Actual:
        """An agent of ours (in actor ``name``) as the planner sees it: its code's state
        decides."""
        agent_id = str(info.get("agent_id") or name)
        state, spec_hash = info.get("state", "alive"), info.get("spec_hash")
        self._homes[(namespace, agent_id)] = name
        new = functools.partial(Actual, agent_id, namespace, spec_hash, True, home=name)
        if state == "starting":  # (re)ask for setup: idempotent, in case its starter died
            actors.send_start(name, namespace, agent_id)
            age = time.time() - float(info.get("started_at") or time.time())
            return new("pending", f"setup running ({age:.0f} s)")
        if state == "failed":
            err = info.get("error") or {}
            return new("failed", f"setup failed: {err.get('type')}: {err.get('message')}")
        return new()

    def _backoff(self) -> dict[tuple[str, str], str]:
        """Agents waiting after a failure: this process's memory, then SQL's backoff."""
        now = time.monotonic()
        waits = {
            key: f"failed {n} time(s), retry in {until - now:.0f} s: {err}"
            for key, (n, until, err) in self._failures.items()
            if until > now
        }
        waits.update(self._from_store("backoff", lambda s: s.backoff(self.scope), {}))
        return waits

    def plan(self) -> Plan:
        """Read both sides and compare them; no side effects."""
        desired, invalid, reachable = self.read_desired()
        return plan(
            desired,
            self.read_actual(desired),
            invalid=invalid,
            graph_reachable=reachable,
            strict=self.strict,
            allow_mass_removal=self.allow_mass_removal,
            mass_removal_share=self.mass_removal_share,
            backoff=self._backoff(),
        )

    # ------------------------------------------------------------------ lock
    def acquire(self) -> None:
        """The leader lock: PostgreSQL lease, else (registry down) a Ray named-actor lock."""
        if self.store is not None:
            try:
                self.store.acquire()
                return
            except RegistryUnavailable as exc:
                log.warning("registry down, using the Ray fallback lock: %s", exc)
        if self._ray_lock is None:
            self._ray_lock = actors.take_lock(LOCK_NAME, SYSTEM_NAMESPACE, self.holder)

    def _renew(self) -> str | None:
        """Extend the lease mid-apply; returns why it was lost, if it was."""
        if self.store is None or self.store.lease is None:
            return None
        try:
            self.store.acquire()
        except (LeaderLockHeld, LeaseLost) as exc:
            return str(exc)
        except RegistryUnavailable as exc:
            log.warning("could not renew the lease, registry unavailable: %s", exc)
        return None

    @property
    def leads(self) -> bool:
        """Whether this process holds the leader lock: an unexpired lease, or the Ray lock."""
        lease = self.store.lease if self.store is not None else None
        held = lease is not None and lease.expires_at > datetime.now(UTC)
        return held or self._ray_lock is not None

    def release(self) -> None:
        self._from_store("release lease", AuditStore.release, False)
        if self._ray_lock is not None:
            actors.kill_handle(self._ray_lock)
            self._ray_lock = None

    def close(self) -> None:
        self.release()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------------ apply
    def reconcile(
        self, *, progress: Progress | None = None, keep_lock: bool = False
    ) -> ApplyReport:
        """Lock, plan, apply, unlock (``keep_lock`` for watch loops that run again soon)."""
        self.acquire()
        try:
            return self.apply(self.plan(), progress=progress)
        finally:
            if not keep_lock:
                self.release()

    def apply(self, the_plan: Plan, *, progress: Progress | None = None) -> ApplyReport:
        """Carry ``the_plan`` out; call with the lock held (``reconcile`` does)."""
        report = ApplyReport(the_plan)
        relays = self._relays(the_plan)
        self._begin_audit(report)  # intent first
        lost = self._run_steps(report, progress)
        self._drop_empty_hosts()
        self._finish_audit(report, lost)  # bookkeeping last
        self._hand_to_relays(relays, report)
        return report

    def _begin_audit(self, report: ApplyReport) -> None:
        """Persist the plan and every step as planned (a fenced lease raises: nothing runs)."""
        if self.store is None or not report.plan.has_changes:
            return
        if self.store.lease is None:  # the Ray fallback lock leads
            report.warnings.append("audit skipped: no lease in PostgreSQL (registry down)")
            return
        try:
            plan_json = report.plan.to_json()
            report.run_id = self.store.begin_run(plan_json, scope=self.scope, strict=self.strict)
        except RegistryUnavailable as exc:
            report.warnings.append(f"audit skipped, registry unavailable: {exc}")

    def _finish_audit(self, report: ApplyReport, lost: str | None) -> None:
        if report.run_id is not None and self.store is not None:
            try:
                report.status = self.store.finish_run(report.run_id, error=lost)
                return
            except SeedcoreError as exc:
                report.warnings.append(f"could not close audit run {report.run_id}: {exc}")
        report.status = "failed" if lost else ("partial" if report.failed else "succeeded")

    def _run_steps(self, report: ApplyReport, progress: Progress | None) -> str | None:
        """Run the steps with bounded concurrency, renewing the lease while waiting.

        Archives and removals go first (they free names that creates may need). Returns why
        the lease was lost, if it was: the steps not yet started are then skipped.
        """
        steps = report.plan.actions
        n_first = len(report.plan.archive) + len(report.plan.remove)
        totals = actors.cluster_totals()  # once per pass: every create checks placement
        renew_every = self.store.lease_ttl / 3 if self.store else 3600.0
        next_renew = time.monotonic() + renew_every
        lost: str | None = None
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="reconcile") as pool:
            for batch in (steps[:n_first], steps[n_first:]):
                if lost is not None:
                    report.skip(batch, lost)
                    continue
                futures: dict[Future[Outcome], Action] = {
                    pool.submit(self._step, a, totals): a for a in batch
                }
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=renew_every, return_when=FIRST_COMPLETED)
                    for fut in done:
                        outcome = fut.result()
                        report.outcomes.append(outcome)
                        if lost is None:
                            lost = self._record(report, outcome)
                        if progress is not None:
                            progress(len(report.outcomes), len(steps), outcome)
                    if lost is None and time.monotonic() >= next_renew:
                        lost = self._renew()
                        next_renew = time.monotonic() + renew_every
                    if lost is not None:
                        cancelled = {f for f in pending if f.cancel()}
                        report.skip((futures[f] for f in cancelled), lost)
                        pending -= cancelled
        return lost

    def _record(self, report: ApplyReport, outcome: Outcome) -> str | None:
        """Remember the outcome (memory + audit); returns why we must stop, if we must."""
        a = outcome.action
        lost, audited = None, False
        if report.run_id is not None and self.store is not None:
            step = {"kind": a.kind, "namespace": a.namespace, "agent_id": a.agent_id}
            result = {"outcome": outcome.outcome, "error": outcome.error, "detail": outcome.detail}
            try:
                self.store.record(report.run_id, **step, **result, duration_ms=outcome.duration_ms)
                audited = True
            except LeaseLost as exc:
                lost = str(exc)
            except SeedcoreError as exc:
                report.warnings.append(f"audit of {a.agent_id} failed: {exc}")
        if outcome.outcome == "failed" and not audited:  # audited ones: SQL's backoff
            n = self._failures.get(a.key, (0, 0.0, ""))[0] + 1
            self._failures[a.key] = (n, time.monotonic() + OFFLINE_RETRY_S, outcome.error or "")
        else:
            self._failures.pop(a.key, None)
        if outcome.outcome != "failed":
            if a.kind in ("create", "replace") and a.spec_hash:
                self._deployed[a.key] = a.spec_hash
            else:
                self._deployed.pop(a.key, None)
        return lost

    # ------------------------------------------------------------------ one step
    def _step(self, action: Action, totals: dict[str, float]) -> Outcome:
        """One step, isolated: any exception becomes a failed outcome."""
        start = time.monotonic()
        info, error = None, None
        try:
            if action.kind == "create":
                result, detail, info = self._start(action, totals)
            elif action.kind == "replace":
                self._stop(action)
                result, detail, info = self._start(action, totals)
            elif action.kind == "remove":
                gone = self._stop(action)
                result, detail = "succeeded", {"was_running": gone}
            else:  # archive: keep what the actor says about itself, then kill it
                where = [(action.namespace, action.agent_id)]
                found = actors.describe_all(where, timeout_s=DESCRIBE_TIMEOUT_S)
                said = dict(found[0].info or {}) if found else {}
                archived = {"namespace": action.namespace, "name": action.agent_id, **said}
                result, detail = "succeeded", {"archived": archived}
                actors.kill(action.agent_id, action.namespace)
        except AgentSetupFailed as exc:  # the user's code: reported as such, actor gone
            detail = {"error_type": exc.error_type, "error_message": exc.message}
            result, error = "failed", str(exc)
        except Exception as exc:
            result, detail, error = "failed", {}, f"{type(exc).__name__}: {exc}"
        ms = int((time.monotonic() - start) * 1000)
        return Outcome(action, result, error, detail, ms, info)

    def _start(
        self, action: Action, totals: dict[str, float]
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """Create the actor, or add the agent to a host of its pool (or adopt what a
        previous pass made), and wait until it is placed and set up."""
        spec, ns, agent_id = action.spec, action.namespace, action.agent_id
        if not isinstance(spec, AgentSpec):
            raise SeedcoreError(f"no spec to start {agent_id}")
        problem = actors.placement_problem(spec, totals)
        if spec.placement == "pooled":
            wait_s = 0.0 if problem else self.ready_timeout_s
            home = actors.add_pooled(spec, ns, self.pool_max_agents, wait_s)
            handle = actors.lookup(home, ns)
        else:
            home = agent_id
            try:
                handle = actors.create_agent(spec, ns)
            except ValueError:  # the name exists: a previous pass (or a race) created it
                handle = actors.lookup(agent_id, ns)
                if handle is None:
                    raise
        self._homes[action.key] = home
        if problem is not None:
            return "pending", {"pending_reason": problem, "home": home}, None
        info = actors.start_agent(handle, self.ready_timeout_s, home, agent_id)
        if info is None:
            reason = f"not placed or set up within {self.ready_timeout_s:g} s (it goes on)"
            return "pending", {"pending_reason": reason, "home": home}, None
        if info.get("spec_hash") != action.spec_hash:  # adopted, but from another spec
            raise SeedcoreError(f"{agent_id} exists with another spec")
        if info.get("state") == "failed":  # never left half-alive holding its resources
            self._stop(action, grace_s=0)
            err = info.get("error") or {}
            raise AgentSetupFailed(str(err.get("type")), str(err.get("message")))
        return "succeeded", {"instance_id": info["instance_id"], "home": home}, info

    def _stop(self, action: Action, grace_s: float | None = None) -> bool:
        """Drain the agent, run its ``shutdown``, then kill its actor or take it out of its
        pool host; False when it was not there."""
        home = self._homes.pop(action.key, action.agent_id)
        if home != action.agent_id:
            self._maybe_empty.add((action.namespace, home))
        grace = self.drain_grace_s if grace_s is None else grace_s
        return actors.stop_agent(home, action.namespace, grace, action.agent_id)

    def _drop_empty_hosts(self) -> None:
        """Remove the pool hosts this pass (or the last read) left without agents."""
        for ns, name in sorted(self._maybe_empty):
            try:
                actors.drop_if_empty(name, ns)
            except Exception as exc:
                log.warning("could not remove empty pool host %s/%s: %s", ns, name, exc)
        self._maybe_empty.clear()

    # ------------------------------------------------------------------ heartbeat relays
    def _relays(self, the_plan: Plan) -> dict[str, Any]:
        """Each namespace with agents gets a heartbeat relay (started, not waited for)."""
        if not self.pg_dsn:
            return {}
        spaces = {e.namespace for e in the_plan.in_sync + the_plan.pending}
        spaces |= {a.namespace for a in the_plan.create + the_plan.replace}
        relays: dict[str, Any] = {}
        for ns in sorted(spaces):
            try:
                relays[ns] = ensure_relay(ns, self.pg_dsn, self.beat_sec)
            except Exception as exc:
                log.warning("heartbeat relay in %s: %s", ns, exc)
        return relays

    def _hand_to_relays(self, relays: dict[str, Any], report: ApplyReport) -> None:
        """Register the agents just started (routable on return, however busy the relays
        are), then have each relay run a round now (it also marks the removed ones dead)."""
        if not report.outcomes:
            return  # nothing changed: the relays beat on their own
        new = [o for o in report.outcomes if o.info]
        if self.store is not None and new:
            try:
                register_live(self.store.registry, [o.info for o in new if o.info])
            except SeedcoreError as exc:
                report.warnings.append(f"registering the new agents: {exc}")
        calls = {ns: actors.send(relay, "round") for ns, relay in relays.items()}
        for ns, answer in actors.collect(calls, 15).items():
            if answer.error is not None:
                report.warnings.append(f"heartbeat relay in {ns}: {answer.error}")
