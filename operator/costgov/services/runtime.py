"""The operator's process-wide state: settings, prices, clients, the ledger, the last snapshot.

Built once at start and handed to the handlers (kopf's `memo`); nothing here is a module
global, so tests run several operators side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from costgov.adapters.kubernetes import KubeClient
from costgov.adapters.memory import give_back_memory
from costgov.adapters.metrics import OperatorMetrics
from costgov.adapters.prometheus import PrometheusSource
from costgov.api import CostPolicy, CostPolicyStatus, TrainingJobBudget, TrainingJobBudgetStatus
from costgov.catalog.hosted import HostedPrices
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.judging import Judgement, Situation
from costgov.domain.scoping import covers, excluded_namespaces
from costgov.services.accounting import Snapshot, collect
from costgov.services.anomalies import AnomalyScan, scan
from costgov.services.api_spend import with_api
from costgov.services.catching_up import HANDOFF_INTERVALS, CatchUp
from costgov.services.evidence import EvidenceCache
from costgov.services.exporting import export_snapshot, live_budgets
from costgov.services.gone_pods import KEEP_SECONDS
from costgov.services.inventory import Inventory
from costgov.services.leadership import Leadership
from costgov.services.ledgers import Ledger
from costgov.services.outcomes import Announced, Outcome
from costgov.services.planning import MAX_POINTS, floor_to
from costgov.services.podwatch import PodStore
from costgov.services.rereading import Rereads
from costgov.services.situations import audit_judgements, situation_from
from costgov.services.statuses import read_status
from costgov.services.windows import budget_window, policy_window, window_key
from costgov.settings import Settings

__all__ = ["MAX_WINDOWS", "Runtime"]

MAX_WINDOWS = 5
WorkKey = tuple[str, str, str]


@dataclass
class Runtime:
    settings: Settings
    catalog: PriceCatalog
    source: PrometheusSource
    kube: KubeClient | None
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    ledger: Ledger = field(default_factory=Ledger)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """The operator's only clock; tests pin it."""
    self_user: str | None = None
    """costgov's identity as the apiserver sees it (settings, or asked at start)."""
    last_good: Snapshot | None = None
    announced: dict[tuple[str, str, str], Announced] = field(default_factory=dict)
    """Thresholds already announced by an Event, by object: a status write that lags or
    fails must not make the next cycle announce them again."""
    versions: Counter[str] = field(default_factory=Counter)
    """Bumped by the index handlers, so views built from an index are rebuilt on change."""
    views: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    leadership: Leadership = field(default_factory=lambda: Leadership("alone", leading=True))
    pods: PodStore = field(default_factory=PodStore)
    """The GPU pods, followed outside kopf (services/podwatch.py)."""
    """Whether this replica reconciles; without a Lease (one instance) it always does."""
    rereads: Rereads = field(init=False)
    hosted: HostedPrices = field(init=False)
    """Token prices of hosted models (the catalog's `models:`, then genai-prices)."""
    catchup: CatchUp = field(init=False)
    """Windows far behind, counted in the background a chunk at a time."""
    evidence: EvidenceCache = field(init=False)
    """What recommendations rest on, read every advice_refresh_minutes."""
    """Fresh reads for admission answers that turn on recent edits."""
    _snapshot: Snapshot | None = None
    _spend_counted_to: datetime | None = None
    """Where costgov_spend_dollars_total has counted to (the last exported snapshot's end)."""
    _taken: float = 0.0
    _judged: tuple[datetime, dict[WorkKey, Judgement]] | None = None
    _scan: AnomalyScan | None = None
    _scan_tried: float = -1e9
    _scan_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    anomaly_announced: set[tuple[str, str, datetime]] = field(default_factory=set)
    """Anomalies already announced by an Event: (policy, subject, hour)."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.rereads = Rereads(self.kube)
        self.hosted = HostedPrices(self.catalog)
        self.evidence = EvidenceCache(
            self.source.aside(2, "costgov-evidence"),
            window=self.settings.advice_window_hours * 3600,
            refresh=self.settings.advice_refresh_minutes * 60,
        )
        step = self.settings.sample_step_seconds
        # a cycle's windows reach back HANDOFF_INTERVALS intervals before they go to the
        # catch-up: deleted pods' owners are kept as long, and one interval more
        self.pods.gone.keep = max(KEEP_SECONDS, (HANDOFF_INTERVALS + 1) * self._interval)
        self.catchup = CatchUp(
            self.source.aside(2, "costgov-catchup"),
            self.catalog,
            step=step,
            timeout=self.settings.query_timeout_seconds,
            most=min(self.settings.catchup_chunk_seconds, MAX_POINTS * step),
        )  # a chunk is always counted at the configured step, never more coarsely
        if self.self_user is None:
            self.self_user = self.settings.operator_username
        self.metrics.leader.set(1 if self.leadership.leading else 0)
        self.leadership.on_change(self._led)
        self.pods.report = self.metrics.pod_follow_failing.set

    def _led(self, leading: bool) -> None:
        """A replica that stops leading forgets what only a leader keeps: its exported
        figures, the thresholds it announced, its snapshot (a new leader reads status)."""
        self.metrics.leader.set(1 if leading else 0)
        self.metrics.leader_transitions.labels("gained" if leading else "lost").inc()
        if not leading:
            self.metrics.clear_figures()
            self.metrics.windows_behind.set(0)  # a standby counts nothing: no alert from it
            self.announced.clear()
            self._snapshot, self._judged = None, None
            self.catchup.forget()  # a new leader counts it, from the cursors in status
            # the leader counts spend from here on: this replica, leading again later, must
            # not add the intervals another counted meanwhile (their counters are summed)
            self._spend_counted_to = None

    def forget(self, kind: str, namespace: str, name: str, left: set[tuple[str, str, str]]) -> None:
        """A CostPolicy, TrainingJobBudget or InferenceDeployment was deleted; `left` holds
        the (kind, namespace, name) of the costgov resources the indexes still hold (the
        deleted one may be among them)."""
        if kind in ("CostPolicy", "TrainingJobBudget"):
            ns = "" if kind == "CostPolicy" else namespace or "default"
            self.metrics.forget((kind, ns, name))
        if not left - {(kind, namespace, name)}:  # nothing left that a cycle runs for
            self.metrics.clear_figures()

    @cached_property
    def excluded(self) -> frozenset[str]:
        return excluded_namespaces(self.settings.operator_namespace)

    @cached_property
    def trusted(self) -> frozenset[str]:
        return frozenset(self.settings.trusted_controllers)

    def view(self, name: str, source: str, size: object, build: Callable[[], Any]) -> Any:
        """A value built from the `source` index, rebuilt when that index changed: its
        handler bumped `versions[source]`, or its size changed (deletions do not call the
        index handler)."""
        stamp = (self.versions[source], size)
        hit = self.views.get(name)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = build()
        self.views[name] = (stamp, value)
        return value

    def windows(self, inv: Inventory, now: datetime) -> dict[str, datetime]:
        """The windows this cycle queries: one per distinct accounting start, at most
        MAX_WINDOWS, the most shared first (in steady state every resource's cursor is the
        last cycle, so there is one). Resources left out keep their figures a cycle longer.
        Plus the window the spend counter continues from, where no resource's starts."""
        starts: Counter[datetime] = Counter()
        for p in inv.policies:
            old = read_status(CostPolicyStatus, inv.status_of("CostPolicy", "", p.metadata.name))
            plan = policy_window(p, old.accounting, old.period_start, now)
            if plan is not None:
                starts[plan.start] += 1
        for b in inv.budgets:
            ns = b.metadata.namespace or "default"
            jobs = [j for j in inv.jobs_in(ns) if covers(b, j.workload)]
            raw = inv.status_of("TrainingJobBudget", ns, b.metadata.name)
            old_budget = read_status(TrainingJobBudgetStatus, raw)
            starts[budget_window(b, old_budget.accounting, jobs, now)] += 1
        ranked = sorted(starts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_WINDOWS]
        windows = {window_key(start): start for start, _ in ranked}
        counted = self._spend_counted_to
        if counted is not None and counted < now:  # the spend counter's next interval
            windows.setdefault(window_key(counted), counted)
        return windows

    async def snapshot(self, inv: Inventory, now: datetime | None = None) -> Snapshot:
        """The cycle's snapshot: computed once per half interval, shared by every handler.
        Windows far behind are counted apart, in the background (services/catching_up.py)."""
        async with self._lock:
            fresh = time.monotonic() - self._taken < self.settings.reconcile_interval_seconds / 2
            if self._snapshot is not None and fresh and now is None:
                return self._snapshot
            at, started = now or self.clock(), time.monotonic()
            interval, step = self._interval, self.settings.sample_step_seconds
            windows = self.windows(inv, at)
            far = {n: windows[n] for n in self.catchup.behind(windows, at, interval)}
            self.catchup.want(far, floor_to(at, step), inv.node_labels())
            async with self.catchup.held:  # its owners cover what it reports: one view
                snap = await collect(
                    self.source,
                    self.catalog,
                    at=at,
                    windows={n: s for n, s in windows.items() if n not in far},
                    interval_seconds=interval,
                    step_seconds=step,
                    live_node_labels=inv.node_labels(),
                    live_pod_owners=inv.pod_owners(),
                    unit_costs=bool(inv.inference),
                    serving=inv.serving_pods(),
                    past_owners=self.catchup.owners(),
                    owners_in={b.metadata.namespace or "default" for b in inv.budgets},
                )
                snap = self.catchup.report(snap, far)
            snap = await with_api(
                snap, self.source, self.hosted,
                team_labels=self.settings.api_team_labels,
                namespaces=self.settings.api_namespaces or None,
            )  # fmt: skip
            self._measured(snap, time.monotonic() - started, self._behind(snap, far))
            if not snap.error:
                self.last_good = snap
                self._spend_counted_to = export_snapshot(
                    self.metrics, snap, inv, self._spend_counted_to
                )
            self.metrics.prune(live_budgets(inv))
            self._snapshot, self._taken = snap, time.monotonic()
        await asyncio.to_thread(give_back_memory)  # what the answers took, freed by now
        return snap

    @property
    def _interval(self) -> int:
        """The span a cycle's current figures (rate, utilisation) cover: at least 5 minutes."""
        return max(int(self.settings.reconcile_interval_seconds), 300)

    @staticmethod
    def _behind(snap: Snapshot, far: Mapping[str, datetime]) -> int:
        """The windows counted in the background that this snapshot does not bring current."""
        to = snap.accounted_to
        return sum(1 for n in far if n not in snap.windows or (to and snap.windows[n].end < to))

    def _measured(self, snap: Snapshot, took: float, far: int) -> None:
        self.metrics.cycles.inc()
        self.metrics.cycle_duration.observe(took)
        self.metrics.cycle_queries.set(snap.queries)
        if snap.error:
            self.metrics.query_errors.inc()  # windows behind: unknown, the gauge stays
        else:
            self.metrics.windows_behind.set(far)

    async def anomalies(self, snap: Snapshot) -> AnomalyScan | None:
        """The last full hour's anomalies: scanned once an hour (a failed scan is retried
        after five minutes), shared by every policy."""
        if not self.settings.anomaly_detection:
            return None
        hour_end = snap.at.replace(minute=0, second=0, microsecond=0)
        async with self._scan_lock:  # every policy asks; one scans
            return await self._scan_once(snap, hour_end)

    async def _scan_once(self, snap: Snapshot, hour_end: datetime) -> AnomalyScan | None:
        done = self._scan is not None and self._scan.hour_end == hour_end
        if done and (self._scan.error is None or time.monotonic() - self._scan_tried < 300):  # type: ignore[union-attr]
            return self._scan
        self._scan_tried = time.monotonic()
        s = self.settings
        self._scan = await scan(
            self.source, self.hosted, at=snap.at, days=s.anomaly_history_days,
            sigma=Decimal(str(s.anomaly_sigma)), minimum=Decimal(str(s.anomaly_min_dollars)),
            team_labels=s.api_team_labels, namespaces=s.api_namespaces or None,
        )  # fmt: skip
        self.metrics.show_anomalies(self._scan.anomalies)
        # an episode is announced when it starts: older hours need not be remembered
        past = hour_end - timedelta(hours=1)
        self.anomaly_announced -= {k for k in self.anomaly_announced if k[2] < past}
        return self._scan

    def situation(self, inv: Inventory, now: datetime) -> Situation:
        return situation_from(
            inv, catalog=self.catalog, now=now, excluded=self.excluded, ledger=self.ledger
        )

    def judgements(self, inv: Inventory, situation: Situation) -> Mapping[WorkKey, Judgement]:
        """Running work judged by the engine, once per cycle (every policy reads it)."""
        if self._judged is None or self._judged[0] != situation.now:
            self._judged = (situation.now, audit_judgements(inv, situation))
        return self._judged[1]

    def audited(self, policy: str, now: datetime) -> list[Any]:
        """Violations admitted in audit mode in the last day, for the policy's status."""
        return [
            v for p, v, t in self.ledger.audit if p == policy and (now - t).total_seconds() < 86400
        ]

    def record_policy(self, policy: CostPolicy, outcome: Outcome[CostPolicyStatus]) -> None:
        """Keep what admission needs (spend this period) and export the policy's gauges."""
        name = policy.metadata.name
        if outcome.announced is not None:
            self.announced[("CostPolicy", "", name)] = outcome.announced
        budget, key = policy.spec.budget, ("CostPolicy", "", name)
        utilization = forecast = None
        if outcome.spent is not None:
            self.ledger.record_policy(name, outcome.spent)
            if budget is not None and budget.amount > 0:
                utilization = float(outcome.spent / budget.amount)
                projected = outcome.status.forecast
                forecast = None if projected is None else float(projected / budget.amount)
        if budget is None:
            self.metrics.drop_figures(key)
        self.metrics.budget(
            key,
            utilization,
            forecast,
            len(outcome.status.violations),
            measured=outcome.spent is not None,
        )

    def threshold_of(self, budget: TrainingJobBudget) -> int | None:
        key = ("TrainingJobBudget", budget.metadata.namespace or "default", budget.metadata.name)
        found = self.announced.get(key)
        return None if found is None else found[1]

    def record_budget(
        self, budget: TrainingJobBudget, outcome: Outcome[TrainingJobBudgetStatus]
    ) -> None:
        """Keep a budget's spend and what its running Jobs are still expected to cost."""
        key = (budget.metadata.namespace or "default", budget.metadata.name)
        if outcome.announced is not None:
            self.announced[("TrainingJobBudget", *key)] = outcome.announced
        self.ledger.record_budget(
            key, outcome.spent, outcome.commitments, outcome.covered, self.clock()
        )
        amount, utilization, forecast = budget.spec.amount, None, None
        if outcome.spent is not None and amount > 0:
            utilization = float(outcome.spent / amount)
            projected = outcome.status.projected_total
            forecast = None if projected is None else float(projected / amount)
        self.metrics.budget(
            ("TrainingJobBudget", *key),
            utilization,
            forecast,
            len(outcome.status.violations),
            measured=outcome.spent is not None,
        )
