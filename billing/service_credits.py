"""Service credits: each closed month's availability per lease line, and the credit it earns.

The billing run (`services.billing_run`, and the per-lease task `billing.bill_lease`) calls
`service_credits` after billing: for every month of a lease's life that has closed (its end in
the contract zone is at or before the run's instant) and has no `AvailabilityReport` yet, it
loads the fleet facts (allocations, replacements, incidents, maintenance windows) in a bounded
number of queries, computes each line's availability with the pure `billing/availability.py`,
and writes, in one transaction under the leases' row locks:

* one `AvailabilityReport` per lease and month (unique constraint): the figures per line, the
  incidents and windows behind them, and the estimate of compute lost per incident;
* when any line earned a credit, one **service credit note** (kind `service`, `period` = the
  month; unique per lease and month) against the month's rent invoice, one line per lease line
  credited, announced as `credit_note.issued` and `service_credit.issued`.

Exactly once: the report's unique constraint is the record that a month was settled; it is
read again under the leases' locks, so duplicate runs, retries and a worker killed mid-run
leave one report and at most one note per lease and month. No claim is needed (docs/rules/
fleet.md, "Availability and service credits").

A month is settled once its rent invoice is issued (the two daily jobs may run in either
order). A month whose rent invoice was voided and waived gets its report but no note: there is
nothing to credit against; the report says so (`uncredited`).

`lease_availability` computes the same figures month-to-date for the tenant API, without
writing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from django.db import transaction
from django.db.models import F, Q

from clusters.acceptance import reference_scenario
from clusters.choices import MaintenanceScope, MaintenanceStatus
from clusters.models import Cluster, Incident, MaintenanceWindow, Node
from clusters.perfmodel import evaluate, inputs_of, topology_of
from common import events
from common.contract_time import local_date
from common.money import ZERO, round_money
from leasing.models import Allocation, Lease, LeaseLine, Replacement

from . import availability as av
from . import proration
from .choices import BILLED_STATUSES, CreditNoteKind, DocumentEvent, InvoiceKind, InvoiceStatus
from .constants import SERVICE_CREDIT_CHUNK
from .loading import billable_leases, load_lines
from .models import (
    HOLDS_SLOT,
    AvailabilityReport,
    BillingRun,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
)
from .planning import CreditPlan

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# An estimate of compute lost per incident, given the line and the incident's figures (see
# `model_estimator`). None: no estimate.
LossEstimator = Callable[[LeaseLine, av.IncidentMinutes], dict[str, Any] | None]


@dataclass(frozen=True)
class GroupModel:
    """What the performance model says of one synchronous job on a line's node group: its GPUs,
    the share of their compute capacity it turns into useful training, and what one restart
    costs it (exact fractions, computed once per group: `compute_lost` runs per incident)."""

    gpus: int
    useful_fraction: float  # the model's `efficiency`: useful FLOP/s ÷ capacity FLOP/s
    restart_cost_s: float  # the model's `restart_cost_s`: detection, reload, redone work

    @cached_property
    def fraction(self) -> Decimal:
        return Decimal(repr(self.useful_fraction))

    @cached_property
    def restart_hours(self) -> Decimal:
        return Decimal(repr(self.restart_cost_s)) / 3600

    @cached_property
    def basis(self) -> str:
        return (
            "one synchronous job (the reference workload, data parallel) over every GPU of the "
            f"line; restart cost {self.restart_cost_s:g} s; useful fraction "
            f"{self.useful_fraction:.4f} of the group's compute (performance model)"
        )


def group_model(cluster: Cluster, *, nodes: int) -> GroupModel:
    """Evaluate the reference workload (the acceptance tests' job, data parallel over every GPU
    of the group: `clusters.acceptance.reference_scenario`) on `nodes` nodes of `cluster`."""
    scenario = reference_scenario(cluster, nodes=nodes)
    out = evaluate(topology_of(scenario), inputs_of(scenario))
    return GroupModel(
        gpus=nodes * cluster.gpus_per_node,
        useful_fraction=float(out.efficiency),
        restart_cost_s=scenario.economics.restart_cost_s,
    )


def compute_lost(*, group: GroupModel, stalled_minutes: Fraction) -> dict[str, Any]:
    """The useful compute a line would lose to one node's incident if it ran one synchronous
    job over all its GPUs: the whole job waits for the incident's time in service (until the
    restart or the swap), then pays one restart (`restart_cost_s`: reloading the checkpoint and
    redoing the work since it). GPU-hours stalled × the model's useful fraction = useful
    GPU-hours lost. Information for both parties, not the credit basis."""
    # Hours, not money: decimals at the default 28 digits, rounded half-up to 2 places once.
    minutes = Decimal(stalled_minutes.numerator) / Decimal(stalled_minutes.denominator)
    stalled_h = minutes / 60 + group.restart_hours
    gpu_hours = stalled_h * group.gpus
    return {
        "useful_gpu_hours_lost": str(round_money(gpu_hours * group.fraction)),
        "gpu_hours_stalled": str(round_money(gpu_hours)),
        "stalled_hours": str(round_money(stalled_h)),
        "gpus": group.gpus,
        "useful_fraction": f"{group.useful_fraction:.4f}",
        "restart_cost_s": f"{group.restart_cost_s:g}",
        "basis": group.basis,
    }


def model_estimator(clusters: dict[int, Cluster]) -> LossEstimator:
    """`compute_lost` for the incidents of lines of these clusters (loaded with their
    accelerator). The model is evaluated lazily, once per node group (cluster and node count)
    that has an incident, so a list of reports costs one evaluation per distinct group."""
    groups: dict[tuple[int, int], GroupModel] = {}

    def estimate(line: LeaseLine, incident: av.IncidentMinutes) -> dict[str, Any] | None:
        cluster = clusters.get(line.cluster_id)
        if cluster is None:
            return None
        key = (line.cluster_id, line.node_count)
        if key not in groups:
            groups[key] = group_model(cluster, nodes=line.node_count)
        return compute_lost(group=groups[key], stalled_minutes=incident.minutes)

    return estimate


def _estimator(lines: Iterable[LeaseLine]) -> LossEstimator:
    cluster_ids = {line.cluster_id for line in lines}
    return model_estimator(Cluster.objects.select_related("accelerator").in_bulk(list(cluster_ids)))


# --- facts -----------------------------------------------------------------------------------


@dataclass
class Facts:
    """What availability needs about some lines over `[lo, hi)`."""

    allocations: dict[int, list[av.AllocationFact]]  # line id → its allocations
    replacements: dict[int, list[av.ReplacementFact]]  # line id → its replacements
    incidents: dict[int, list[av.IncidentFact]]  # node id → incidents
    windows: dict[int, list[av.WindowFact]]  # node id → windows
    hostnames: dict[int, str]


def load_facts(line_ids: Sequence[int], lo: dt.datetime, hi: dt.datetime) -> Facts:
    """Allocations, replacements, incidents and windows of these lines over `[lo, hi)`: five
    queries whatever their number."""
    allocations: dict[int, list[av.AllocationFact]] = defaultdict(list)
    node_ids: set[int] = set()
    for pk, line_id, node_id, hostname, start, end, accepted in (
        Allocation.objects.filter(line_id__in=line_ids)
        .order_by("pk")
        .values_list(
            "pk", "line_id", "node_id", "node__hostname", "starts_at", "ends_at", "accepted_at"
        )
    ):
        allocations[line_id].append(av.AllocationFact(pk, node_id, start, end, accepted, hostname))
        node_ids.add(node_id)
    replacements: dict[int, list[av.ReplacementFact]] = defaultdict(list)
    for line_id, failed, spare, at, incident in Replacement.objects.filter(
        line_id__in=line_ids
    ).values_list("line_id", "failed_allocation_id", "spare_allocation_id", "at", "incident_id"):
        replacements[line_id].append(av.ReplacementFact(failed, spare, at, incident))
    held = Allocation.objects.filter(line_id__in=line_ids).values("node_id")
    incidents: dict[int, list[av.IncidentFact]] = defaultdict(list)
    for pk, node_id, opened, resolved, category in (
        Incident.objects.filter(node_id__in=held, opened_at__lt=hi)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=lo))
        .order_by("opened_at", "pk")
        .values_list("pk", "node_id", "opened_at", "resolved_at", "category")
    ):
        incidents[node_id].append(av.IncidentFact(pk, node_id, opened, resolved, category))
    windows: dict[int, list[av.WindowFact]] = defaultdict(list)
    rows = list(
        MaintenanceWindow.objects.exclude(status=MaintenanceStatus.CANCELLED)
        .filter(starts_at__lt=hi, ends_at__gt=lo)
        .values_list(
            "pk",
            "scope",
            "cluster_id",
            "site_id",
            "kind",
            "announced_at",
            "starts_at",
            "ends_at",
            "title",
        )
    )
    if rows and node_ids:
        where = {
            pk: (cluster, site)
            for pk, cluster, site in Node.objects.filter(pk__in=node_ids).values_list(
                "pk", "cluster_id", "cluster__site_id"
            )
        }
        chosen: dict[int, set[int]] = defaultdict(set)
        by_scope_nodes = [r[0] for r in rows if r[1] == MaintenanceScope.NODES]
        if by_scope_nodes:
            through = MaintenanceWindow.nodes.through
            for window_id, node_id in through.objects.filter(
                maintenancewindow_id__in=by_scope_nodes, node_id__in=node_ids
            ).values_list("maintenancewindow_id", "node_id"):
                chosen[window_id].add(node_id)
        for pk, scope, cluster, site, kind, announced, start, end, title in rows:
            if scope == MaintenanceScope.NODES:
                nodes = chosen.get(pk, set())
            elif scope == MaintenanceScope.CLUSTER:
                nodes = {n for n, (c, _) in where.items() if c == cluster}
            else:
                nodes = {n for n, (_, s) in where.items() if s == site}
            fact = av.WindowFact(pk, kind, announced, start, end, frozenset(nodes), title)
            for node in nodes:
                windows[node].append(fact)
    hostnames = {a.node: a.hostname for line in allocations.values() for a in line}
    return Facts(dict(allocations), dict(replacements), dict(incidents), dict(windows), hostnames)


# --- computing -------------------------------------------------------------------------------


def line_month(
    lease: Lease,
    line: LeaseLine,
    period: dt.date,
    facts: Facts,
    *,
    until: dt.datetime,
) -> av.LineMonth:
    """One line's availability over `period` (through `until`)."""
    tz = lease.contract_timezone
    p_start, p_end = proration.period_bounds(period, tz)
    terms = av.node_terms(
        line_start=lease.commencement,
        line_end=line.end,
        allocations=facts.allocations.get(line.pk, []),
        replacements=facts.replacements.get(line.pk, []),
    )
    rent = av.month_rent(
        line.monthly_rate,
        life_start=lease.commencement,
        life_end=line.end,
        month_start=p_start,
        month_end=p_end,
        tz=tz,
    )
    return av.line_month(
        line=line.pk,
        month_start=p_start,
        month_end=p_end,
        until=until,
        terms=terms,
        incidents=facts.incidents,
        windows=facts.windows,
        month_rent=rent,
    )


def _minutes(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return str(proration.to_money(value))  # two decimals, half-up (display)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def line_report(
    line: LeaseLine,
    result: av.LineMonth,
    facts: Facts,
    *,
    estimate: LossEstimator | None = None,
) -> dict[str, Any]:
    """The JSON figures of one line-month (the report, the API)."""
    return {
        "line": line.pk,
        "cluster": getattr(line, "cluster_name", None) or f"cluster {line.cluster_id}",
        "nodes": line.node_count,
        "in_service_minutes": _minutes(result.in_service_minutes),
        "downtime_minutes": _minutes(result.downtime_minutes),
        "incident_minutes": _minutes(av.minutes(result.incident_us)),
        "maintenance_minutes": _minutes(av.minutes(result.maintenance_us)),
        "availability": str(av.percent(result.availability)),
        "tier": str(av.percent(result.tier, 0)),
        "month_rent": str(proration.to_money(result.month_rent)),
        "credit": str(result.credit),
        "final": result.final,
        "incidents": [
            {
                "incident": i.incident,
                "node": i.node,
                "hostname": facts.hostnames.get(i.node, ""),
                "category": i.category,
                "opened_at": _iso(i.opened_at),
                "resolved_at": _iso(i.resolved_at),
                "minutes": _minutes(i.minutes),
                "compute_lost": estimate(line, i) if estimate else None,
            }
            for i in result.incidents
        ],
        "windows": [
            {
                "window": w.window,
                "title": w.title,
                "kind": w.kind,
                "late": w.late,
                "announced_at": _iso(w.announced_at),
                "starts_at": _iso(w.starts_at),
                "ends_at": _iso(w.ends_at),
                "nodes": w.nodes,
                "minutes": _minutes(w.minutes),
                "counted_minutes": _minutes(w.counted),
            }
            for w in result.windows
        ],
    }


def _closed_months(lease: Lease, lines: Sequence[LeaseLine], now: dt.datetime) -> list[dt.date]:
    """The months of the lease's life whose end is at or before `now`."""
    tz = lease.contract_timezone
    end = max((line.end for line in lines), default=lease.commencement)
    if end <= lease.commencement:
        return []
    months = proration.months_between(
        local_date(lease.commencement, tz), local_date(end, tz) - dt.timedelta(days=1)
    )
    return [m for m in months if proration.period_bounds(m, tz)[1] <= now]


def _pending(
    leases: Sequence[Lease], lines: dict[int, list[LeaseLine]], now: dt.datetime
) -> dict[int, list[dt.date]]:
    """lease id → its closed months without a report whose rent invoice is issued (or void
    and waived): two queries. A month not yet invoiced waits for the billing run, so the two
    jobs may run in any order."""
    ids = [lease.pk for lease in leases]
    done: dict[int, set[dt.date]] = defaultdict(set)
    for lease_id, period in AvailabilityReport.objects.filter(lease_id__in=ids).values_list(
        "lease_id", "period"
    ):
        done[lease_id].add(period)
    billed: dict[int, set[dt.date]] = defaultdict(set)
    for lease_id, period in (
        Invoice.objects.filter(lease_id__in=ids, kind=InvoiceKind.RENT)
        .filter(HOLDS_SLOT)
        .exclude(status=InvoiceStatus.DRAFT)
        .values_list("lease_id", "period")
    ):
        billed[lease_id].add(period)
    pending = {}
    for lease in leases:
        months = [
            m
            for m in _closed_months(lease, lines.get(lease.pk, []), now)
            if m not in done[lease.pk] and m in billed[lease.pk]
        ]
        if months:
            pending[lease.pk] = months
    return pending


# --- writing ---------------------------------------------------------------------------------


@dataclass
class _Computed:
    lease: Lease
    period: dt.date
    results: list[tuple[LeaseLine, av.LineMonth]]

    @property
    def credit(self) -> Decimal:
        return sum((r.credit for _, r in self.results), ZERO)


def _compute(
    leases: Sequence[Lease], lines: dict[int, list[LeaseLine]], pending: dict[int, list[dt.date]]
) -> tuple[list[_Computed], Facts]:
    by_id = {lease.pk: lease for lease in leases}
    bounds = [
        proration.period_bounds(m, by_id[lease_id].contract_timezone)
        for lease_id, months in pending.items()
        for m in months
    ]
    line_ids = [line.pk for lease_id in pending for line in lines.get(lease_id, [])]
    facts = load_facts(line_ids, min(b[0] for b in bounds), max(b[1] for b in bounds))
    computed = []
    for lease_id, months in pending.items():
        lease = by_id[lease_id]
        for period in months:
            _, p_end = proration.period_bounds(period, lease.contract_timezone)
            results = [
                (line, line_month(lease, line, period, facts, until=p_end))
                for line in lines.get(lease_id, [])
            ]
            computed.append(_Computed(lease, period, results))
    return computed, facts


def _credit_plans(
    computed: Sequence[_Computed],
) -> list[tuple[_Computed, CreditPlan | None]]:
    """A credit plan per lease-month that earned one, against the month's rent invoice (two
    queries)."""
    owed = [c for c in computed if c.credit > 0]
    invoices = (
        {
            (inv.lease_id, inv.period): inv
            for inv in Invoice.objects.filter(
                lease_id__in={c.lease.pk for c in owed},
                kind=InvoiceKind.RENT,
                status__in=BILLED_STATUSES,
            ).filter(period__in={c.period for c in owed})
        }
        if owed
        else {}
    )
    inv_lines = (
        {
            (il.invoice_id, il.lease_line_id): il
            for il in InvoiceLine.objects.filter(invoice__in=list(invoices.values())).only(
                "id", "invoice_id", "lease_line_id", "service_start", "service_end", "days"
            )
        }
        if invoices
        else {}
    )
    plans: list[tuple[_Computed, CreditPlan | None]] = []
    for c in computed:
        invoice = invoices.get((c.lease.pk, c.period)) if c.credit > 0 else None
        if invoice is None:
            plans.append((c, None))
            continue
        note_lines = []
        for line, result in c.results:
            il = inv_lines.get((invoice.pk, line.pk))
            if result.credit <= 0 or il is None:
                continue
            note_lines.append(
                CreditNoteLine(
                    invoice_line=il,
                    lease_line_id=line.pk,
                    description=(
                        f"Service credit {c.period:%B %Y}: {line.node_count} nodes, availability "
                        f"{av.percent(result.availability)} %, tier "
                        f"{av.percent(result.tier, 0)} %"
                    ),
                    service_start=il.service_start,
                    service_end=il.service_end,
                    days=0,
                    amount=result.credit,
                )
            )
        plan = (
            CreditPlan(
                invoice,
                note_lines,
                reason=f"Service credit for {c.period:%B %Y}: availability below the promise",
                kind=CreditNoteKind.SERVICE,
                period=c.period,
            )
            if note_lines
            else None
        )
        plans.append((c, plan))
    return plans


def service_credits(
    *,
    lease_ids: Sequence[int],
    now: dt.datetime,
    run: BillingRun | None = None,
    actor: User | None = None,
    estimate: LossEstimator | None = None,
) -> list[CreditNote]:
    """Settle every closed month of these leases that has no availability report yet: write
    its report and, when owed, its service credit note. Idempotent (see the module docstring);
    returns the credit notes issued."""
    from .services import _write_credits  # the one writer of credit notes

    leases = list(Lease.objects.filter(pk__in=lease_ids).order_by("pk"))
    lines = load_lines(leases)
    if not _pending(leases, lines, now):
        return []
    with transaction.atomic():
        locked = list(Lease.objects.filter(pk__in=lease_ids).select_for_update().order_by("pk"))
        lines = load_lines(locked)
        pending = _pending(locked, lines, now)
        if not pending:
            return []
        computed, facts = _compute(locked, lines, pending)
        if estimate is None:
            estimate = _estimator(line for group in lines.values() for line in group)
        planned = _credit_plans(computed)
        plans = [p for _, p in planned if p is not None]
        notes = _write_credits(plans, now=now, run=run, actor=actor)
        by_plan = {id(p): n for p, n in zip(plans, notes, strict=True)}
        AvailabilityReport.objects.bulk_create(
            [
                AvailabilityReport(
                    lease=c.lease,
                    tenant_id=c.lease.tenant_id,
                    period=c.period,
                    period_start=proration.period_bounds(c.period, c.lease.contract_timezone)[0],
                    period_end=proration.period_bounds(c.period, c.lease.contract_timezone)[1],
                    computed_at=now,
                    in_service_us=sum(r.in_service_us for _, r in c.results),
                    downtime_us=sum(r.downtime_us for _, r in c.results),
                    credit=c.credit if plan is not None else ZERO,
                    currency=c.lease.currency,
                    report={
                        "lines": [
                            line_report(line, r, facts, estimate=estimate) for line, r in c.results
                        ],
                        "uncredited": str(c.credit) if plan is None and c.credit > 0 else None,
                    },
                    credit_note=by_plan.get(id(plan)) if plan is not None else None,
                    billing_run=run,
                )
                for c, plan in planned
            ]
        )
        for c, plan in planned:
            if plan is None and c.credit > 0:
                logger.warning(
                    "billing: lease %s earned a service credit of %s for %s but has no issued "
                    "rent invoice for that month to credit",
                    c.lease.pk,
                    c.credit,
                    c.period,
                )
        if notes:
            _announce_service(notes)
            if run is not None:
                BillingRun.objects.filter(pk=run.pk).update(
                    credit_notes_issued=F("credit_notes_issued") + len(notes)
                )
    return notes


def _announce_service(notes: Iterable[CreditNote]) -> None:
    events.emit_many(
        events.Event(
            DocumentEvent.SERVICE_CREDIT_ISSUED,
            subject="credit_note",
            subject_id=note.pk,
            payload={
                "tenant": note.tenant_id,
                "lease": note.lease_id,
                "number": note.number,
                "period": note.period.isoformat() if note.period else None,
            },
            occurred_at=cast(dt.datetime, note.issued_at),  # set on every issued note
        )
        for note in notes
    )


# --- reading (month to date) -----------------------------------------------------------------


def lease_availability(
    lease: Lease, period: dt.date, *, now: dt.datetime, estimate: LossEstimator | None = None
) -> dict[str, Any]:
    """The lease's availability over `period` as of `now`: final (from the stored report) once
    the month is settled, otherwise computed month-to-date. No write."""
    report = AvailabilityReport.objects.filter(lease=lease, period=period).first()
    tz = lease.contract_timezone
    p_start, p_end = proration.period_bounds(period, tz)
    if report is not None:
        return {
            "period": period,
            "final": True,
            "as_of": report.computed_at,
            "credit_note": report.credit_note_id,
            "lines": report.report.get("lines", []),
        }
    lines = load_lines([lease]).get(lease.pk, [])
    if estimate is None:
        estimate = _estimator(lines)
    until = min(now, p_end)
    facts = load_facts([line.pk for line in lines], p_start, p_end)
    rows = []
    for line in lines:
        result = line_month(lease, line, period, facts, until=until)
        rows.append(line_report(line, result, facts, estimate=estimate))
    return {
        "period": period,
        "final": False,
        "as_of": until,
        "credit_note": None,
        "lines": rows,
    }


def service_credit_run(*, now: dt.datetime, chunk_size: int = SERVICE_CREDIT_CHUNK) -> int:
    """Settle every billable lease's closed months, in chunks of leases (one transaction
    each); returns the number of service credit notes issued. Safe to run twice."""
    ids = list(billable_leases(now=now))
    issued = 0
    for offset in range(0, len(ids), chunk_size):
        issued += len(service_credits(lease_ids=ids[offset : offset + chunk_size], now=now))
    return issued
