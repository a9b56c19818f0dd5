"""Billing services: every write of billing goes through here.

Rules (docs/rules/billing.md):

* **Rent** is billed per lease line by calendar month of the lease's contract zone, **in
  advance**: a month's invoice is issued `INVOICE_LOOKAHEAD_DAYS` (7) days before the month
  starts, and the first, partial month at commencement. A line's billable life is
  `[lease.commencement, line end)` with line end = the earliest of the line's effective end, the
  lease's effective end and the term end. Amounts follow the cumulative rule of
  `billing/proration.py`, so a line's invoices sum to its exact accrual rounded once.
  DRAFT and VOID leases are never billed; a CANCELLED lease's life is empty.
* **One invoice per lease, kind and month** (unique constraint) among the invoices that hold
  the month. **Voiding** needs a reason and a resolution, and records who did it: `reissue`
  frees the month, and the next run bills it again under a new number (by the rule, as the
  lease stands then); `waive` keeps the month taken: it is never billed again (the quote
  counts it as settled). A void never silently forgives a month.
* **Corrections** keep a lease's rent invoices, net of credit notes, equal to its exact accrual
  rounded once, after every run, whatever the order of notices, withdrawals and runs. For
  every month whose rent invoice is issued or paid, each line's net billed (its lines on the
  month's rent and supplementary invoices, minus what was credited) is compared with its
  share by the rule at the current ends (`rent_split`). The lease owes back `Σ (net − due)`:
  when positive (a notice or reclaim moved an end earlier) the excess is credited, one credit
  note per invoice; when negative (an end moved later inside an invoiced month: a withdrawn
  notice) the shortfall is billed on a **supplementary invoice** per month, referencing the
  month's rent invoice, once per lease, month and cause (`notice_withdrawn:<id>`, unique
  constraint). Idempotent by construction: a second computation finds nothing left. They are
  issued right after the change that calls for them, by the billing consumer of lease events
  (`billing/consumers.py`), and recomputed by every run (catch-up). A waived
  month is settled (left out); a waived supplementary invoice counts as billed.
* **Holdover**: nodes not released within `drain_grace_hours` after the lease's end are billed
  at 150 % of the per-diem (`monthly_rate / days_in_month` of each month) for every local day
  from the end until the day release is confirmed (a started day counts), for the lines still
  running at the lease's end. If release is confirmed within the grace, nothing is charged.
  Holdover is billed in arrears on a separate invoice of kind HOLDOVER per lease and month,
  issued once the month is over or the release is confirmed.
* **Numbers** are gapless per kind and year of issue (UTC): `INV-2026-000001`,
  `CN-2026-000001`, taken from a `NumberSeries` row locked in the transaction that issues.
* **Events**: issuing a document emits `invoice.issued` / `credit_note.issued`
  (`common.events`) in the issuing transaction, one batch per chunk of the run.
* **Net 30**: `due_at = issued_at + 30 days`. `mark_overdue` flags issued invoices past due and
  sets each tenant's standing (past due while any invoice is overdue).

Every operator write records its actor (`issued_by`, `paid_by`, `voided_by`, and `issued_by`
on credit notes an operator's call issued); the scheduler's writes have none.

Concurrency: a billing transaction locks its leases' rows in primary-key order before reading
what was billed, so two runs (two beats, a redelivered task, an operator) serialize per lease;
the number series row is locked last, after the leases, always invoice before credit note.
A run killed anywhere leaves whole transactions behind; running it again does the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple, cast

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from clusters.models import Cluster
from common import events
from common.clock import resolve_now as _now
from common.contract_time import ceil_local_midnight, local_date
from common.db import lock_row
from common.exceptions import InvalidInput
from common.money import ZERO
from leasing.choices import LeaseStatus, NoticeStatus, TenantStanding
from leasing.models import Lease, LeaseLine, Notice, Tenant

from . import proration
from .choices import (
    BillingRunStatus,
    CreditNoteStatus,
    DocumentEvent,
    InvoiceKind,
    InvoiceStatus,
    SeriesKind,
    VoidResolution,
)
from .constants import (
    INVOICE_LOOKAHEAD_DAYS,
    NUMBER_DIGITS,
    NUMBER_PREFIX,
    PAYMENT_TERMS_DAYS,
    RUN_CHUNK_SIZE,
    SCAN_ENDED_WITHIN_DAYS,
)
from .exceptions import (
    InvalidPeriod,
    InvoiceHasCreditNotes,
    InvoiceHasSupplements,
    InvoiceNotDraft,
    InvoiceNotIssued,
    LeaseNotBillable,
    PeriodOutsideLease,
)
from .models import (
    HOLDS_SLOT,
    BillingRun,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    NumberSeries,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser as User

logger = logging.getLogger(__name__)

NOT_BILLED = (LeaseStatus.DRAFT, LeaseStatus.VOID)
BILLED_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PAID)
# The kinds that bill rent: a month's rent invoice and its supplementary invoices.
RENT_KINDS = (InvoiceKind.RENT, InvoiceKind.SUPPLEMENTARY)
LOOKAHEAD = dt.timedelta(days=INVOICE_LOOKAHEAD_DAYS)
HOLDOVER_MULTIPLIER = proration.HOLDOVER_MULTIPLIER
# What billing reads of an invoice it may refresh, credit or return.
INVOICE_FIELDS = (
    "id",
    "number",
    "tenant_id",
    "lease_id",
    "kind",
    "period",
    "period_start",
    "period_end",
    "status",
    "void_resolution",
    "supplements_id",
    "cause",
    "currency",
    "total",
    "billing_run_id",
)
# What credit planning reads of the invoice lines already billed.
BILLED_LINE_FIELDS = (
    "id",
    "invoice_id",
    "lease_line_id",
    "service_start",
    "service_end",
    "days",
    "monthly_rate",
    "amount",
)


# --- small helpers --------------------------------------------------------------------------


def _check_period(period: dt.date) -> dt.date:
    if not isinstance(period, dt.date) or isinstance(period, dt.datetime) or period.day != 1:
        raise InvalidPeriod(extra={"period": str(period)})
    return period


def format_number(kind: str, year: int, value: int) -> str:
    return f"{NUMBER_PREFIX[kind]}-{year}-{value:0{NUMBER_DIGITS}d}"


def _reserve_numbers(kind: str, year: int, count: int) -> list[str]:
    """`count` consecutive numbers of the series, under its row lock (held to commit).

    Must run inside the transaction that issues the documents: a rollback returns the numbers.
    """
    if count == 0:
        return []
    series = NumberSeries.objects.select_for_update().filter(kind=kind, year=year).first()
    if series is None:
        NumberSeries.objects.get_or_create(kind=kind, year=year)
        series = NumberSeries.objects.select_for_update().get(kind=kind, year=year)
    first = series.last_value + 1
    NumberSeries.objects.filter(pk=series.pk).update(last_value=F("last_value") + count)
    return [format_number(kind, year, value) for value in range(first, first + count)]


def _period_label(period: dt.date) -> str:
    return period.strftime("%B %Y")


def _line_label(line: LeaseLine) -> str:
    name = getattr(line, "cluster_name", None) or f"cluster {line.cluster_id}"
    return f"{line.node_count} × {name} nodes"


def rent_periods(lease: Lease, lines: Sequence[LeaseLine]) -> list[dt.date]:
    """First days of every month the lease's lines accrue rent in (empty for no life)."""
    tz = lease.contract_timezone
    start = lease.commencement
    end = max((line.end for line in lines), default=start)
    if end <= start:
        return []
    last_day = local_date(end, tz) - dt.timedelta(days=1)
    return list(proration.months_between(local_date(start, tz), last_day))


def rent_issue_from(lease: Lease, period: dt.date) -> dt.datetime:
    """When a month's rent invoice falls due to be issued: 7 days before the month starts, or
    at commencement for a first month that starts later than the 1st."""
    p_start, _ = proration.period_bounds(period, lease.contract_timezone)
    if lease.commencement > p_start:
        return lease.commencement
    return p_start - LOOKAHEAD


def holdover_span(
    lease: Lease, *, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None] | None:
    """`(start, until)` of the holdover charged so far, `until` None while still held.

    None when there is no holdover: the lease had no life, has not ended, or release was
    confirmed within the drain grace (or the grace has not run out yet).
    """
    end = lease.end
    if end <= lease.commencement or end > now:
        return None
    grace_end = end + dt.timedelta(hours=lease.drain_grace_hours)
    released = lease.released_at
    if released is not None and released <= grace_end:
        return None
    if released is None and now <= grace_end:
        return None
    if released is not None and released > now:
        released = None  # recorded ahead of time: still held as of `now`
    until = ceil_local_midnight(released, lease.contract_timezone) if released else None
    return end, until


# --- planning (pure over loaded rows) -------------------------------------------------------


@dataclass
class _InvoicePlan:
    lease: Lease
    kind: str
    period: dt.date
    period_start: dt.datetime
    period_end: dt.datetime
    lines: list[InvoiceLine]
    existing: Invoice | None = None  # a draft to refresh and issue
    supplements: Invoice | None = None  # a supplementary invoice's original
    cause: str = ""  # a supplementary invoice's cause

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass
class _CreditPlan:
    invoice: Invoice
    lines: list[CreditNoteLine]
    reason: str

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass
class _Plan:
    invoices: list[_InvoicePlan] = field(default_factory=list)
    credits: list[_CreditPlan] = field(default_factory=list)
    # (lease, amount) a holdover invoice fell short of (an end moved later after a holdover
    # credit): reported, never charged
    underbilled: list[tuple[int, Decimal]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.invoices or self.credits)


class _Slot(NamedTuple):
    """What the runs read of an existing invoice to know a month is taken."""

    pk: int
    kind: str
    period: dt.date
    status: str


@dataclass
class _Loaded:
    leases: list[Lease]
    lines: dict[int, list[LeaseLine]]
    # lease id → (kind, month) → the invoice in that slot, for every lease (plain rows)
    slots: dict[int, dict[tuple[str, dt.date], _Slot]]
    # lease id → invoice models, by month: only of the leases whose invoices are read further
    # (credit planning, a draft to refresh, or every lease with `full_invoices`)
    invoices: dict[int, list[Invoice]]
    # invoice id → lines of the issued or paid rent and supplementary invoices (and of waived
    # supplementary ones, which count as billed), of the leases in `changed`
    billed_lines: dict[int, list[InvoiceLine]]
    credited: dict[int, Decimal]  # invoice line id → already credited
    changed: set[int]  # leases whose issued rent may no longer match their lines
    # invoice id → lines of the issued/paid holdover invoices of released leases
    holdover_lines: dict[int, list[InvoiceLine]] = field(default_factory=dict)
    # invoice line id → (days credited, where the first credit starts)
    credited_days: dict[int, tuple[int, dt.datetime]] = field(default_factory=dict)
    # lease id → its withdrawn notices, last withdrawn last (the causes of supplements)
    withdrawn: dict[int, list[int]] = field(default_factory=dict)


def changed_lease_ids(lease_ids: Sequence[int] | dict) -> set[int]:
    """Leases with an issued or paid rent invoice line that no longer matches its lease line:
    it billed up to a `service_end` other than where the line now stops in that month (a
    notice, reclaim or cancellation moved the end), or at another rate. One query, so a run
    reads the billing history only of leases that changed, not of the whole book.

    (Not seen here: a line that now runs into an invoiced month it was not billed in at all,
    e.g. it stopped at that month's start; only a withdrawal does that: see
    `withdrawn_notices`.)
    """
    term_end = F("lease_line__lease__term_end")
    now_end = Least(
        Coalesce(F("lease_line__effective_end"), term_end),
        Coalesce(F("lease_line__lease__effective_end"), term_end),
        F("invoice__period_end"),
    )
    return set(
        InvoiceLine.objects.filter(
            invoice__lease_id__in=lease_ids,
            invoice__status__in=BILLED_STATUSES,
            invoice__kind=InvoiceKind.RENT,
        )
        .annotate(now_end=now_end)
        .filter(~Q(service_end=F("now_end")) | ~Q(monthly_rate=F("lease_line__monthly_rate")))
        .values_list("invoice__lease_id", flat=True)
        .distinct()
    )


def withdrawn_notices(lease_ids: Sequence[int]) -> dict[int, list[int]]:
    """Each lease's withdrawn notices, in the order they were withdrawn: one query over the few
    withdrawn notices (the notice status is indexed).

    A withdrawal is what moves an end later. It may move a line into an invoiced month whose
    invoice has no line for it at all (the line stopped at that month's start, or was
    cancelled), which `changed_lease_ids` cannot see from the invoice lines; so a lease with a
    withdrawn notice is always checked in full (few: withdrawals are rare). The last one names
    the cause of a supplementary invoice.
    """
    withdrawn: dict[int, list[int]] = defaultdict(list)
    for lease_id, pk in (
        Notice.objects.filter(status=NoticeStatus.WITHDRAWN, lease_id__in=lease_ids)
        .order_by("withdrawn_at", "pk")
        .values_list("lease_id", "pk")
    ):
        withdrawn[lease_id].append(pk)
    return dict(withdrawn)


def _released_with_holdover(
    leases: Sequence[Lease], slots: dict[int, dict[tuple[str, dt.date], _Slot]]
) -> set[int]:
    """Leases whose release is confirmed and that have an issued or paid holdover invoice: the
    release may have been confirmed with a date earlier than what was billed (a backdated
    `released_at`), so their holdover is checked against the current span. Few: holdover is
    rare and billing only scans leases that ended recently."""
    return {
        lease.pk
        for lease in leases
        if lease.released_at is not None
        and any(
            slot.kind == InvoiceKind.HOLDOVER and slot.status in BILLED_STATUSES
            for slot in slots.get(lease.pk, {}).values()
        )
    }


def _load(lease_ids: Sequence[int], *, lock: bool, full_invoices: bool = False) -> _Loaded:
    """Everything billing needs about these leases, in six queries whatever their size (one
    more when a released lease has billed holdover); the billed lines and credits only of
    leases whose ends changed (`changed_lease_ids`) or whose holdover may need a credit
    (`_released_with_holdover`).

    Past invoices are read as plain rows (`slots`): a lease's history grows by a month each
    month, and the runs only need to know which months are taken. Invoice models are loaded,
    in one more query, only for the leases whose invoices are read further: credit planning and
    drafts to refresh (rare), or every lease with `full_invoices` (one lease, by hand)."""
    qs = Lease.objects.filter(pk__in=lease_ids).order_by("pk")
    if lock:
        qs = qs.select_for_update()
    leases = list(qs)
    return _load_history(leases, _load_lines(leases), full_invoices=full_invoices)


def _load_lines(leases: Sequence[Lease]) -> dict[int, list[LeaseLine]]:
    """The leases' lines, by lease, each with its lease and cluster name attached."""
    by_id = {lease.pk: lease for lease in leases}
    lines: dict[int, list[LeaseLine]] = defaultdict(list)
    for line in (
        LeaseLine.objects.filter(lease_id__in=by_id)
        .only("id", "lease_id", "cluster_id", "node_count", "monthly_rate", "effective_end")
        .order_by("lease_id", "id")
    ):
        line.lease = by_id[line.lease_id]
        lines[line.lease_id].append(line)
    # Cluster names for the descriptions: a few rows, not one model per line.
    names = dict(
        Cluster.objects.filter(lease_lines__lease_id__in=by_id).distinct().values_list("id", "name")
    )
    for line_list in lines.values():
        for line in line_list:
            # An attribute of these instances only, read back by `_line_label` (getattr).
            line.cluster_name = names.get(line.cluster_id, f"cluster {line.cluster_id}")  # type: ignore[attr-defined]
    return lines


def _load_history(
    leases: list[Lease],
    lines: dict[int, list[LeaseLine]],
    *,
    full_invoices: bool = False,
    slots_only: bool = False,
) -> _Loaded:
    """What was billed to these leases (see `_load`). With `slots_only`, only which months
    are taken (two queries): enough to see that invoices are due, not to plan credits."""
    by_id = {lease.pk: lease for lease in leases}
    slots: dict[int, dict[tuple[str, dt.date], _Slot]] = defaultdict(dict)
    invoices: dict[int, list[Invoice]] = defaultdict(list)
    invoice_models = Invoice.objects.only(*INVOICE_FIELDS).order_by("period", "id")
    if full_invoices:
        for invoice in invoice_models.filter(lease_id__in=by_id):
            invoices[invoice.lease_id].append(invoice)
            if _takes_slot(invoice.kind, invoice.status, invoice.void_resolution):
                slots[invoice.lease_id][(invoice.kind, invoice.period)] = _Slot(
                    invoice.pk, invoice.kind, invoice.period, invoice.status
                )
    else:
        with_drafts: set[int] = set()
        # The slots of rent and holdover: one row each (unique among the rows holding it).
        for pk, lease_id, kind, period, status in (
            Invoice.objects.filter(lease_id__in=by_id)
            .filter(HOLDS_SLOT)
            .exclude(kind=InvoiceKind.SUPPLEMENTARY)
            .order_by("period", "id")
            .values_list("id", "lease_id", "kind", "period", "status")
        ):
            slots[lease_id][(kind, period)] = _Slot(pk, kind, period, status)
            if status == InvoiceStatus.DRAFT:
                with_drafts.add(lease_id)
    if slots_only:
        return _Loaded(leases, lines, slots, invoices, {}, {}, set())
    withdrawn = withdrawn_notices(list(by_id)) if by_id else {}
    changed = (changed_lease_ids(list(by_id)) if by_id else set()) | set(withdrawn)
    billed_lines: dict[int, list[InvoiceLine]] = defaultdict(list)
    waived_supplement = Q(
        invoice__kind=InvoiceKind.SUPPLEMENTARY,
        invoice__status=InvoiceStatus.VOID,
        invoice__void_resolution=VoidResolution.WAIVE,
    )
    for inv_line in (
        InvoiceLine.objects.filter(invoice__lease_id__in=changed, invoice__kind__in=RENT_KINDS)
        .filter(Q(invoice__status__in=BILLED_STATUSES) | waived_supplement)
        .only(*BILLED_LINE_FIELDS)
        .order_by("id")
    ):
        billed_lines[inv_line.invoice_id].append(inv_line)
    released = _released_with_holdover(leases, slots)
    if not full_invoices:
        read_further = changed | released | with_drafts
        if read_further:
            for invoice in invoice_models.filter(lease_id__in=read_further):
                invoices[invoice.lease_id].append(invoice)
    holdover_lines: dict[int, list[InvoiceLine]] = defaultdict(list)
    if released:
        for inv_line in (
            InvoiceLine.objects.filter(
                invoice__lease_id__in=released,
                invoice__status__in=BILLED_STATUSES,
                invoice__kind=InvoiceKind.HOLDOVER,
            )
            .only(*BILLED_LINE_FIELDS)
            .order_by("id")
        ):
            holdover_lines[inv_line.invoice_id].append(inv_line)
    credited: dict[int, Decimal] = defaultdict(lambda: ZERO)
    credited_days: dict[int, tuple[int, dt.datetime]] = {}
    # Summed here, not in SQL: SQLite sums decimals as floats.
    with_credits = changed | released
    if with_credits:
        for inv_line_id, amount, days, start in CreditNoteLine.objects.filter(
            credit_note__lease_id__in=with_credits, credit_note__status=CreditNoteStatus.ISSUED
        ).values_list("invoice_line_id", "amount", "days", "service_start"):
            credited[inv_line_id] += amount
            so_far, first = credited_days.get(inv_line_id, (0, start))
            credited_days[inv_line_id] = (so_far + days, min(first, start))
    return _Loaded(
        leases,
        lines,
        slots,
        invoices,
        billed_lines,
        credited,
        changed,
        holdover_lines,
        credited_days,
        withdrawn,
    )


def _holds_slot(status: str, void_resolution: str) -> bool:
    """Whether an invoice holds its slot: it is not void resolved `reissue` (`HOLDS_SLOT`)."""
    return not (status == InvoiceStatus.VOID and void_resolution == VoidResolution.REISSUE)


def _takes_slot(kind: str, status: str, void_resolution: str) -> bool:
    """Whether an invoice holds a (lease, kind, month) slot: rent or holdover, holding it."""
    return kind != InvoiceKind.SUPPLEMENTARY and _holds_slot(status, void_resolution)


LEASE_ATTNAMES = tuple(f.attname for f in Lease._meta.concrete_fields)
LINE_FIELDS = ("id", "lease_id", "cluster_id", "node_count", "monthly_rate", "effective_end")


def _load_locked(lease_ids: Sequence[int], seen: _Loaded) -> _Loaded:
    """`_load` under the leases' row locks (taken here, in pk order), reusing the leases and
    lines of the lock-free look `seen` when they are unchanged.

    Under the locks every lease row (all its columns) and every line the billing reads is read
    again as plain values and compared with what `seen` read; if anything differs (a notice,
    reclaim, release or new line landed in between) everything is loaded again. What was
    billed is always read again under the locks.
    """
    locked = list(
        Lease.objects.filter(pk__in=lease_ids)
        .select_for_update()
        .order_by("pk")
        .values_list(*LEASE_ATTNAMES)
    )
    current_lines = list(
        LeaseLine.objects.filter(lease_id__in=[row[0] for row in locked])
        .order_by("lease_id", "id")
        .values_list(*LINE_FIELDS)
    )
    seen_leases = [tuple(getattr(lease, a) for a in LEASE_ATTNAMES) for lease in seen.leases]
    seen_lines = [
        tuple(getattr(line, a) for a in LINE_FIELDS)
        for lease in seen.leases
        for line in seen.lines.get(lease.pk, [])
    ]
    if locked != seen_leases or current_lines != seen_lines:
        return _load(lease_ids, lock=False)  # the locks are held: a full read
    return _load_history(seen.leases, seen.lines)


def _cum(line: LeaseLine, lease: Lease, through: dt.datetime) -> Fraction:
    """Exact rent of a line from commencement up to `through` (zero before, flat after)."""
    return proration.cumulative(
        line.monthly_rate,
        life_start=lease.commencement,
        life_end=line.end,
        through=through,
        tz=lease.contract_timezone,
    )


def allocate(base: Fraction, parts: Sequence[Fraction]) -> list[Decimal]:
    """Cents for consecutive exact `parts` that follow an exact `base`, rounded cumulatively.

    Part i gets `round(base + A_i) − round(base + A_(i−1))` with `A_i` the sum of parts 1..i, so
    the cents sum to `round(base + A_n) − round(base)` exactly, none is negative when the parts
    are not, and a zero part gets zero. This is how a lease-level cumulative amount is split
    across the lease's lines without losing or inventing a cent.
    """
    result = []
    running = base
    previous = proration.to_money(base)
    for part in parts:
        running += part
        current = proration.to_money(running)
        result.append(current - previous)
        previous = current
    return result


def rent_split(
    lease: Lease, lines: Sequence[LeaseLine], p_start: dt.datetime, p_end: dt.datetime
) -> list[Decimal]:
    """The rent of each line for `[p_start, p_end)`, in `lines` order, by the lease-level rule.

    The lease's amount for the period is `round(C(p_end)) − round(C(p_start))`, with `C` the
    exact accrual of all its lines from commencement: a lease's invoices sum to its exact
    accrual rounded once. The lines share that amount by cumulative rounding (`allocate`).
    """
    before = [_cum(line, lease, p_start) for line in lines]
    parts = [_cum(line, lease, p_end) - b for line, b in zip(lines, before, strict=True)]
    return allocate(sum(before, Fraction(0)), parts)


def _days_held(lease: Lease, line: LeaseLine, start: dt.datetime, end: dt.datetime) -> int:
    """Local days of the line's billable life `[commencement, line end)` within `[start, end)`."""
    return proration.overlap_days(
        life_start=lease.commencement,
        life_end=line.end,
        period_start=start,
        period_end=end,
        tz=lease.contract_timezone,
    )


def _rent_lines(lease: Lease, lines: Sequence[LeaseLine], period: dt.date) -> list[InvoiceLine]:
    tz = lease.contract_timezone
    p_start, p_end = proration.period_bounds(period, tz)
    dim = proration.days_in_month(period)
    amounts = rent_split(lease, lines, p_start, p_end)
    result = []
    for line, amount in zip(lines, amounts, strict=True):
        end = line.end
        days = _days_held(lease, line, p_start, p_end)
        if days == 0:
            continue
        result.append(
            InvoiceLine(
                lease_line_id=line.pk,
                description=(
                    f"Rent {_period_label(period)}: {_line_label(line)}, {days}/{dim} days"
                ),
                service_start=max(lease.commencement, p_start),
                service_end=min(end, p_end),
                days=days,
                days_in_month=dim,
                monthly_rate=line.monthly_rate,
                rate_multiplier=Decimal(1),
                amount=amount,
            )
        )
    return result


def _holdover_lines(
    lease: Lease, lines: Sequence[LeaseLine], period: dt.date, span: tuple
) -> list[InvoiceLine]:
    """Holdover of the lines still running at the lease's end, by the same lease-level rule
    (cumulative from the end, at 150 % of each month's per-diem)."""
    tz = lease.contract_timezone
    start, until = span
    p_start, p_end = proration.period_bounds(period, tz)
    life_end = until if until is not None else p_end
    dim = proration.days_in_month(period)
    held = [line for line in lines if line.end == lease.end]

    def cum(line: LeaseLine, through: dt.datetime) -> Fraction:
        rate = Fraction(line.monthly_rate) * HOLDOVER_MULTIPLIER
        return proration.cumulative(
            rate, life_start=start, life_end=life_end, through=through, tz=tz
        )

    base = sum((cum(line, p_start) for line in held), Fraction(0))
    amounts = allocate(base, [cum(line, p_end) - cum(line, p_start) for line in held])
    days = proration.overlap_days(
        life_start=start, life_end=life_end, period_start=p_start, period_end=p_end, tz=tz
    )
    if days == 0:
        return []
    return [
        InvoiceLine(
            lease_line_id=line.pk,
            description=(
                f"Holdover {_period_label(period)}: {_line_label(line)}, "
                f"{days} days at 150 % of the per-diem"
            ),
            service_start=max(start, p_start),
            service_end=min(life_end, p_end),
            days=days,
            days_in_month=dim,
            monthly_rate=line.monthly_rate,
            rate_multiplier=Decimal("1.50"),
            amount=amount,
        )
        for line, amount in zip(held, amounts, strict=True)
    ]


def trim_to(amounts: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """Non-negative amounts, each at most its positive input, summing to `total` (which must not
    exceed the positive inputs' sum): the excess is taken from the largest amounts first."""
    result = [max(amount, ZERO) for amount in amounts]
    excess = sum(result, ZERO) - total
    for index in sorted(range(len(result)), key=lambda i: -result[i]):
        if excess <= 0:
            break
        cut = min(excess, result[index])
        result[index] -= cut
        excess -= cut
    return result


def _holdover_periods(lease: Lease, span: tuple, *, now: dt.datetime) -> list[dt.date]:
    """Months of holdover that can be billed as of `now`: over, or the release is known."""
    tz = lease.contract_timezone
    start, until = span
    if until is not None:
        if until <= start:
            return []
        last_day = local_date(until, tz) - dt.timedelta(days=1)
    else:
        last_day = local_date(now, tz)
    periods = []
    for period in proration.months_between(local_date(start, tz), last_day):
        _, p_end = proration.period_bounds(period, tz)
        if p_end <= now or (until is not None and until <= p_end):
            periods.append(period)
    return periods


class _CreditCandidate(NamedTuple):
    """One billed invoice line that may be credited: `diff` is net billed − now due."""

    invoice: Invoice
    invoice_line: InvoiceLine
    line: LeaseLine
    diff: Decimal
    credit_from: dt.datetime  # where the service no longer due starts
    days: int  # days billed that are no longer due

    @classmethod
    def of(
        cls,
        invoice: Invoice,
        invoice_line: InvoiceLine,
        line: LeaseLine,
        diff: Decimal,
        held_to: dt.datetime,
        days_now: int,
    ) -> _CreditCandidate:
        """`held_to`: where the line's service now due stops; `days_now`: its days now due."""
        start, end = invoice_line.service_start, invoice_line.service_end
        return cls(
            invoice=invoice,
            invoice_line=invoice_line,
            line=line,
            diff=diff,
            credit_from=min(max(held_to, start), end),
            days=max(invoice_line.days - days_now, 0),
        )


def _plan_owed_back(
    lease: Lease,
    candidates: Sequence[_CreditCandidate],
    owed_back: Decimal,
    plan: _Plan,
    *,
    reason: str,
    label: str,
    why: str,
) -> None:
    """Credit exactly `owed_back` over the candidates: the positive differences trimmed to the
    lease-level total, one credit note per invoice. A negative total is reported as
    underbilled, never charged here; zero writes nothing."""
    if owed_back < 0:
        plan.underbilled.append((lease.pk, owed_back))
        return
    if owed_back == 0:
        return
    tz = lease.contract_timezone
    amounts = trim_to([c.diff for c in candidates], owed_back)
    by_invoice: dict[int, _CreditPlan] = {}
    for c, amount in zip(candidates, amounts, strict=True):
        if amount <= 0:
            continue
        head = f"{label} {_period_label(c.invoice.period)}: {_line_label(c.line)}"
        note = by_invoice.setdefault(c.invoice.pk, _CreditPlan(c.invoice, [], reason=reason))
        note.lines.append(
            CreditNoteLine(
                invoice_line=c.invoice_line,
                lease_line_id=c.line.pk,
                description=(
                    f"{head}, {c.days} days from {local_date(c.credit_from, tz):%Y-%m-%d} {why}"
                    if c.days
                    else f"{head}, rounding"
                ),
                service_start=c.credit_from,
                service_end=c.invoice_line.service_end,
                days=c.days,
                amount=amount,
            )
        )
    plan.credits.extend(by_invoice.values())


class _Shortfall(NamedTuple):
    """One line of an invoiced month billed less than the rule now says (its end moved later
    inside the month): what a supplementary invoice bills."""

    original: Invoice  # the month's rent invoice
    line: LeaseLine
    amount: Decimal  # due − net billed, positive
    billed_to: dt.datetime  # where the service billed (net of credits) stops
    days: int  # days now due that were not billed


def _month_documents(data: _Loaded, lease: Lease) -> dict[dt.date, list[Invoice]]:
    """The lease's rent and supplementary invoices (every status) by month."""
    months: dict[dt.date, list[Invoice]] = defaultdict(list)
    for inv in data.invoices.get(lease.pk, []):
        if inv.kind in RENT_KINDS:
            months[inv.period].append(inv)
    return months


def _is_waived(invoice: Invoice) -> bool:
    return invoice.status == InvoiceStatus.VOID and invoice.void_resolution == VoidResolution.WAIVE


def _plan_rent_corrections(
    lease: Lease, lines: Sequence[LeaseLine], data: _Loaded, plan: _Plan, *, now: dt.datetime
) -> None:
    """Credit what the lease's rent invoices billed beyond what the rule now says, or bill what
    they fell short of on supplementary invoices.

    Per month with an issued or paid rent invoice (the original) and per lease line: `net` =
    the line's amounts on the month's issued or paid rent and supplementary invoices minus
    what was credited on them (plus waived supplementary invoices: settled), against `due`,
    the line's share of the month by the current ends (`rent_split`). The lease owes back
    `Σ (net − due)`. Per line the differences can be a cent either way (the lease-level
    rounding shifts between months), so only the differences in the direction of the total
    are used, trimmed to exactly that total: a positive total is credited (newest document
    first), a negative one billed on one supplementary invoice per month. A second computation
    finds nothing left. A month whose rent invoice was waived is settled and left out; one
    whose rent invoice was voided to be re-issued is billed afresh by the run instead.
    """
    by_line = {line.pk: line for line in lines}
    credits: list[_CreditCandidate] = []
    shortfalls: list[_Shortfall] = []
    owed_back = ZERO
    months = _month_documents(data, lease)
    for docs in months.values():
        original = next(
            (i for i in docs if i.kind == InvoiceKind.RENT and i.status in BILLED_STATUSES), None
        )
        if original is None:
            continue
        due = rent_split(lease, lines, original.period_start, original.period_end)
        # Each line's billed lines in the month, newest document first.
        billed: dict[int, list[tuple[Invoice, InvoiceLine]]] = defaultdict(list)
        for inv in sorted(docs, key=lambda i: -i.pk):
            if inv.status in BILLED_STATUSES or (
                inv.kind == InvoiceKind.SUPPLEMENTARY and _is_waived(inv)
            ):
                for inv_line in data.billed_lines.get(inv.pk, []):
                    if inv_line.lease_line_id in by_line:
                        billed[inv_line.lease_line_id].append((inv, inv_line))
        for line, line_due in zip(lines, due, strict=True):
            pairs = billed.get(line.pk, [])
            net = sum((il.amount - data.credited[il.pk] for _, il in pairs), ZERO)
            diff = net - line_due
            owed_back += diff
            if diff < 0:
                shortfalls.append(_shortfall(lease, original, line, -diff, pairs, data))
            excess = diff
            for inv, inv_line in pairs:
                if inv.status not in BILLED_STATUSES:
                    continue  # waived: settled, nothing to credit
                share = min(excess, inv_line.amount - data.credited[inv_line.pk])
                excess -= max(share, ZERO)
                days_now = _days_held(lease, line, inv_line.service_start, inv_line.service_end)
                credits.append(_CreditCandidate.of(inv, inv_line, line, share, line.end, days_now))
    if owed_back > 0:
        _plan_owed_back(
            lease,
            credits,
            owed_back,
            plan,
            reason="Lease lines ended inside the period",
            label="Credit",
            why="no longer leased",
        )
    elif owed_back < 0:
        _plan_supplements(lease, shortfalls, -owed_back, months, data, plan, now=now)


def _shortfall(
    lease: Lease,
    original: Invoice,
    line: LeaseLine,
    amount: Decimal,
    pairs: Sequence[tuple[Invoice, InvoiceLine]],
    data: _Loaded,
) -> _Shortfall:
    """What a line of the month is short of: the amount, and the days now due beyond those
    billed net of credits (from where the billed service, net of credits, stops)."""
    days_billed = 0
    billed_to = max(lease.commencement, original.period_start)
    for _, inv_line in pairs:
        credited_days, credited_from = data.credited_days.get(
            inv_line.pk, (0, inv_line.service_end)
        )
        days_billed += inv_line.days - credited_days
        billed_to = max(billed_to, min(credited_from, inv_line.service_end))
    days_due = _days_held(lease, line, original.period_start, original.period_end)
    return _Shortfall(original, line, amount, billed_to, max(days_due - days_billed, 0))


def supplement_cause(
    documents: Sequence[Invoice], withdrawn: Sequence[int], *, now: dt.datetime
) -> str:
    """The cause of a month's next supplementary invoice, unused among its `documents` (the
    month's rent and supplementary invoices).

    A supplementary invoice voided to be re-issued is billed again under its own cause. Else
    the cause is the lease's last withdrawal (`notice_withdrawn:<id>`): what moves an end later.
    A shortfall with neither (a rate or an end edited by hand) is an adjustment as of `now`.
    """
    supplements = [i for i in documents if i.kind == InvoiceKind.SUPPLEMENTARY]
    used = {i.cause for i in supplements if _holds_slot(i.status, i.void_resolution)}
    for inv in supplements:
        if inv.cause not in used:  # voided for re-issue, not re-issued yet
            return inv.cause
    if withdrawn and (cause := f"notice_withdrawn:{withdrawn[-1]}") not in used:
        return cause
    return f"adjustment:{now.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}Z"


def _cause_label(cause: str) -> str:
    kind, _, ref = cause.partition(":")
    return f"notice {ref} withdrawn" if kind == "notice_withdrawn" else cause


def _plan_supplements(
    lease: Lease,
    shortfalls: Sequence[_Shortfall],
    need: Decimal,
    months: dict[dt.date, list[Invoice]],
    data: _Loaded,
    plan: _Plan,
    *,
    now: dt.datetime,
) -> None:
    """Bill exactly `need` over the shortfalls, trimmed to the lease-level total: one
    supplementary invoice per month, referencing the month's rent invoice."""
    tz = lease.contract_timezone
    amounts = trim_to([s.amount for s in shortfalls], need)
    by_month: dict[dt.date, _InvoicePlan] = {}
    for s, amount in zip(shortfalls, amounts, strict=True):
        if amount <= 0:
            continue
        original = s.original
        period = original.period
        supplement = by_month.get(period)
        if supplement is None:
            cause = supplement_cause(months[period], data.withdrawn.get(lease.pk, []), now=now)
            supplement = by_month[period] = _InvoicePlan(
                lease,
                InvoiceKind.SUPPLEMENTARY,
                period,
                original.period_start,
                original.period_end,
                [],
                supplements=original,
                cause=cause,
            )
        service_end = max(min(s.line.end, original.period_end), s.billed_to)
        head = f"Supplement {_period_label(period)}: {_line_label(s.line)}"
        supplement.lines.append(
            InvoiceLine(
                lease_line_id=s.line.pk,
                description=(
                    f"{head}, {s.days} days from {local_date(s.billed_to, tz):%Y-%m-%d} "
                    f"({_cause_label(supplement.cause)}), after {original.number}"
                    if s.days
                    else f"{head}, rounding, after {original.number}"
                ),
                service_start=s.billed_to,
                service_end=service_end,
                days=s.days,
                days_in_month=proration.days_in_month(period),
                monthly_rate=s.line.monthly_rate,
                rate_multiplier=Decimal(1),
                amount=amount,
            )
        )
    plan.invoices.extend(by_month.values())


def _plan_holdover_credits(
    lease: Lease, lines: Sequence[LeaseLine], data: _Loaded, plan: _Plan, *, now: dt.datetime
) -> None:
    """Credit what the lease's issued holdover invoices billed beyond the current holdover.

    Release can be confirmed with a date earlier than what was already billed (the operator
    records on April 2nd that the nodes were back on March 5th, after March's holdover was
    billed for the whole month). Per invoice line: `net = billed − already credited` against
    `due`, the line's holdover for that month over the current span (`holdover_span`, nothing
    if release now falls within the grace), by the same lease-level rule as the invoice
    (`_holdover_lines`). As for rent, the positive differences are trimmed to exactly the
    lease's `Σ (net − due)`, so nothing is credited twice and a second computation finds
    nothing left; a negative total is reported as underbilled, never charged here.
    """
    span = holdover_span(lease, now=now)
    by_line = {line.pk: line for line in lines}
    candidates: list[_CreditCandidate] = []
    owed_back = ZERO
    for inv in data.invoices.get(lease.pk, []):
        if inv.kind != InvoiceKind.HOLDOVER or inv.status not in BILLED_STATUSES:
            continue
        due_lines = _holdover_lines(lease, lines, inv.period, span) if span is not None else []
        due = {due_line.lease_line_id: due_line for due_line in due_lines}
        for inv_line in data.holdover_lines.get(inv.pk, []):
            line = by_line.get(inv_line.lease_line_id)
            if line is None:
                continue
            now_line = due.pop(line.pk, None)
            net = inv_line.amount - data.credited[inv_line.pk]
            diff = net - (now_line.amount if now_line is not None else ZERO)
            owed_back += diff
            if now_line is None:
                held_to, days_now = inv_line.service_start, 0
            else:
                held_to, days_now = now_line.service_end, now_line.days
            candidates.append(_CreditCandidate.of(inv, inv_line, line, diff, held_to, days_now))
        # Lines now due that this invoice never billed.
        owed_back -= sum((due_line.amount for due_line in due.values()), ZERO)
    _plan_owed_back(
        lease,
        candidates,
        owed_back,
        plan,
        reason="Release confirmed before the billed holdover",
        label="Credit holdover",
        why="released",
    )


def _holdover_credit_due(
    lease: Lease, lines: Sequence[LeaseLine], data: _Loaded, *, now: dt.datetime
) -> bool:
    """Whether a released lease's issued holdover now exceeds what is due (exact, no query)."""
    if not data.holdover_lines or lease.released_at is None:
        return False
    probe = _Plan()
    _plan_holdover_credits(lease, lines, data, probe, now=now)
    return bool(probe.credits)


def _due_slots(
    lease: Lease,
    lines: Sequence[LeaseLine],
    data: _Loaded,
    *,
    now: dt.datetime,
    period_cap: dt.date | None,
) -> list[tuple[str, dt.date, Invoice | None, tuple | None]]:
    """(kind, month, draft or None, holdover span) of every invoice due and not yet issued."""
    existing = data.slots.get(lease.pk, {})
    drafts: dict[int, Invoice] | None = None

    def draft(slot: _Slot) -> Invoice | None:
        nonlocal drafts
        if drafts is None:
            drafts = {inv.pk: inv for inv in data.invoices.get(lease.pk, [])}
        return drafts.get(slot.pk)  # always there under the lease lock

    slots: list[tuple[str, dt.date, Invoice | None, tuple | None]] = []
    for period in rent_periods(lease, lines):
        if (period_cap is not None and period > period_cap) or rent_issue_from(lease, period) > now:
            break
        current = existing.get((InvoiceKind.RENT, period))
        if current is None:
            slots.append((InvoiceKind.RENT, period, None, None))
        elif current.status == InvoiceStatus.DRAFT:
            slots.append((InvoiceKind.RENT, period, draft(current), None))
    span = holdover_span(lease, now=now)
    if span is not None:
        for period in _holdover_periods(lease, span, now=now):
            if period_cap is not None and period > period_cap:
                break
            current = existing.get((InvoiceKind.HOLDOVER, period))
            if current is None:
                slots.append((InvoiceKind.HOLDOVER, period, None, span))
            elif current.status == InvoiceStatus.DRAFT:
                slots.append((InvoiceKind.HOLDOVER, period, draft(current), span))
    return slots


def _ends_changed(lease: Lease, lines: Sequence[LeaseLine], data: _Loaded) -> bool:
    """Whether any issued rent invoice of the lease may no longer match its lines (see
    `changed_lease_ids`, `withdrawn_notices`). If none changed, the rule gives the same
    amounts: nothing to correct. After a correction the test stays true for that lease (the
    invoice keeps its old `service_end`); the full computation then finds nothing more."""
    return lease.pk in data.changed


def _rent_correction_due(
    lease: Lease, lines: Sequence[LeaseLine], data: _Loaded, *, now: dt.datetime
) -> bool:
    """Whether a changed lease's rent needs a credit or a supplement now (exact, no query):
    a lease corrected once stays changed, and must not be locked by every run for nothing."""
    if not _ends_changed(lease, lines, data):
        return False
    probe = _Plan()
    _plan_rent_corrections(lease, lines, data, probe, now=now)
    return bool(probe)


def _has_work(
    lease: Lease,
    data: _Loaded,
    *,
    now: dt.datetime,
    period_cap: dt.date | None,
    invoices: bool,
    credits: bool,
) -> bool:
    if lease.status in NOT_BILLED:
        return False
    lines = data.lines.get(lease.pk, [])
    if invoices and _due_slots(lease, lines, data, now=now, period_cap=period_cap):
        return True
    return credits and (
        _rent_correction_due(lease, lines, data, now=now)
        or _holdover_credit_due(lease, lines, data, now=now)
    )


def _plan_lease(
    lease: Lease,
    data: _Loaded,
    *,
    now: dt.datetime,
    period_cap: dt.date | None,
    invoices: bool = True,
    credits: bool = True,
) -> _Plan:
    plan = _Plan()
    if lease.status in NOT_BILLED:
        return plan
    lines = data.lines.get(lease.pk, [])
    tz = lease.contract_timezone
    if invoices:
        for kind, period, current, span in _due_slots(
            lease, lines, data, now=now, period_cap=period_cap
        ):
            if kind == InvoiceKind.RENT:
                invoice_lines = _rent_lines(lease, lines, period)
            else:
                assert span is not None  # a holdover slot carries its span
                invoice_lines = _holdover_lines(lease, lines, period, span)
                if not invoice_lines:
                    continue
            p_start, p_end = proration.period_bounds(period, tz)
            plan.invoices.append(
                _InvoicePlan(lease, kind, period, p_start, p_end, invoice_lines, existing=current)
            )
    if credits and _ends_changed(lease, lines, data):
        _plan_rent_corrections(lease, lines, data, plan, now=now)
    if credits and lease.released_at is not None and data.holdover_lines:
        _plan_holdover_credits(lease, lines, data, plan, now=now)
    return plan


# --- writing --------------------------------------------------------------------------------


@dataclass
class BillOutcome:
    """What one billing transaction wrote."""

    invoices: list[Invoice] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    underbilled: int = 0

    def merge(self, other: BillOutcome) -> None:
        self.invoices.extend(other.invoices)
        self.credit_notes.extend(other.credit_notes)
        self.underbilled += other.underbilled


def _write_invoices(
    plans: Sequence[_InvoicePlan],
    *,
    now: dt.datetime,
    run: BillingRun | None,
    issue: bool,
    actor: User | None = None,
) -> list[Invoice]:
    """Create (or refresh drafts of) the planned invoices, then issue them with numbers (by
    `actor`, None for the scheduler)."""
    if not plans:
        return []
    fresh = [
        Invoice(
            tenant_id=p.lease.tenant_id,
            lease=p.lease,
            kind=p.kind,
            supplements=p.supplements,
            cause=p.cause,
            period=p.period,
            period_start=p.period_start,
            period_end=p.period_end,
            status=InvoiceStatus.DRAFT,
            currency=p.lease.currency,
            total=p.total,
            billing_run=run,
            issued_by=actor if issue else None,
        )
        for p in plans
        if p.existing is None
    ]
    Invoice.objects.bulk_create(fresh)
    fresh_iter = iter(fresh)
    invoices = []
    drafts = []
    for p in plans:
        if p.existing is None:
            invoice = next(fresh_iter)
        else:
            invoice = p.existing
            invoice.total = p.total
            invoice.billing_run = run
            invoice.issued_by = actor if issue else None
            drafts.append(invoice)
        invoices.append(invoice)
        for line in p.lines:
            line.invoice_id = invoice.pk  # the id, not the object: cheaper, nothing reads it
    if drafts:
        InvoiceLine.objects.filter(invoice__in=drafts).delete()
    InvoiceLine.objects.bulk_create([line for p in plans for line in p.lines])
    for draft in drafts:  # few: drafts are made by hand
        draft.save(update_fields=["total", "billing_run", "issued_by"])
    if issue:
        numbers = _reserve_numbers(SeriesKind.INVOICE, now.astimezone(dt.UTC).year, len(invoices))
        due_at = now + dt.timedelta(days=PAYMENT_TERMS_DAYS)
        _mark_issued(Invoice, invoices, numbers, issued_at=now, due_at=due_at)
        for invoice, number in zip(invoices, numbers, strict=True):
            invoice.status = InvoiceStatus.ISSUED
            invoice.number = number
            invoice.issued_at = now
            invoice.due_at = due_at
        _announce(DocumentEvent.INVOICE_ISSUED, "invoice", invoices)
    return invoices


def _announce(kind: str, subject: str, documents: Sequence[Invoice] | Sequence[CreditNote]) -> None:
    """Emit `kind` for each issued document, in the issuing transaction: one batch, so a
    chunk of the run costs a bounded number of queries however many documents it issues."""
    events.emit_many(
        events.Event(
            kind,
            subject=subject,
            subject_id=doc.pk,
            payload={"tenant": doc.tenant_id, "lease": doc.lease_id, "number": doc.number},
            occurred_at=doc.issued_at,
        )
        for doc in documents
    )


def _mark_issued(
    model: type[Invoice] | type[CreditNote],
    rows: Sequence[Invoice] | Sequence[CreditNote],
    numbers: Sequence[str],
    *,
    issued_at: dt.datetime,
    due_at: dt.datetime | None = None,
    batch: int = 5000,
) -> None:
    """DRAFT → ISSUED with each row's number, in one statement per batch.

    `bulk_update` builds a CASE per row and field (seconds for thousands of rows); a join with
    a VALUES list is one cheap statement. The syntax (WITH … UPDATE … FROM) is shared by
    PostgreSQL and SQLite ≥ 3.33.
    """
    table = model._meta.db_table
    ops = connection.ops
    sets = "status = %s, number = v.number, issued_at = %s"
    params_head: list = ["issued", ops.adapt_datetimefield_value(issued_at)]
    if due_at is not None:
        sets += ", due_at = %s"
        params_head.append(ops.adapt_datetimefield_value(due_at))
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), batch):
            chunk = list(
                zip(rows[offset : offset + batch], numbers[offset : offset + batch], strict=True)
            )
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params: list = []
            for row, number in chunk:
                params += [row.pk, number]
            cursor.execute(
                # Table and column names are constants; every value is a parameter.
                f"WITH v(id, number) AS (VALUES {values}) "  # nosec B608
                f"UPDATE {table} SET {sets} FROM v WHERE {table}.id = v.id",
                [*params, *params_head],  # in text order: the VALUES, then the SET
            )


def _write_credits(
    plans: Sequence[_CreditPlan],
    *,
    now: dt.datetime,
    run: BillingRun | None,
    actor: User | None = None,
) -> list[CreditNote]:
    if not plans:
        return []
    notes = [
        CreditNote(
            tenant_id=p.invoice.tenant_id,
            lease_id=p.invoice.lease_id,
            invoice=p.invoice,
            status=CreditNoteStatus.DRAFT,
            currency=p.invoice.currency,
            total=p.total,
            reason=p.reason,
            billing_run=run,
            issued_by=actor,
        )
        for p in plans
    ]
    CreditNote.objects.bulk_create(notes)
    for note, p in zip(notes, plans, strict=True):
        for line in p.lines:
            line.credit_note = note
    CreditNoteLine.objects.bulk_create([line for p in plans for line in p.lines])
    numbers = _reserve_numbers(SeriesKind.CREDIT_NOTE, now.astimezone(dt.UTC).year, len(notes))
    _mark_issued(CreditNote, notes, numbers, issued_at=now)
    for note, number in zip(notes, numbers, strict=True):
        note.status = CreditNoteStatus.ISSUED
        note.number = number
        note.issued_at = now
    _announce(DocumentEvent.CREDIT_NOTE_ISSUED, "credit_note", notes)
    return notes


def _bill_leases(
    lease_ids: Sequence[int],
    *,
    now: dt.datetime,
    period_cap: dt.date | None = None,
    run: BillingRun | None = None,
    invoices: bool = True,
    credits: bool = True,
    actor: User | None = None,
) -> BillOutcome:
    """Bill what is due for these leases, in one transaction and a bounded number of queries;
    `actor` is the operator whose call it is (None: the scheduler).

    A lock-free look first: if nothing is due (the usual case for a redelivered or duplicate
    task) it returns without writing. Otherwise the leases are locked in pk order and the plan
    is recomputed under the lock, so a concurrent run that got there first leaves nothing to do.
    """
    if not lease_ids:
        return BillOutcome()
    leases = list(Lease.objects.filter(pk__in=lease_ids).order_by("pk"))
    lines = _load_lines(leases)
    # Invoices due are seen from the months taken alone; the billing history is read only
    # when none is, to look for credits.
    data = _load_history(leases, lines, slots_only=True)
    if not (
        invoices
        and any(
            _has_work(lease, data, now=now, period_cap=period_cap, invoices=True, credits=False)
            for lease in data.leases
        )
    ):
        if not credits:
            return BillOutcome()
        data = _load_history(leases, lines)
        if not any(
            _has_work(lease, data, now=now, period_cap=period_cap, invoices=False, credits=True)
            for lease in data.leases
        ):
            return BillOutcome()
    outcome = BillOutcome()
    with transaction.atomic():
        data = _load_locked(lease_ids, data)
        invoice_plans: list[_InvoicePlan] = []
        credit_plans: list[_CreditPlan] = []
        # Credit notes first: they are computed against the invoices as they stood.
        for lease in data.leases:
            plan = _plan_lease(
                lease, data, now=now, period_cap=period_cap, invoices=invoices, credits=credits
            )
            invoice_plans.extend(plan.invoices)
            credit_plans.extend(plan.credits)
            outcome.underbilled += len(plan.underbilled)
            for lease_id, amount in plan.underbilled:
                logger.warning(
                    "billing: lease %s holdover is billed %s less than now due (release "
                    "moved later after a holdover credit); needs an operator",
                    lease_id,
                    -amount,
                )
        # Lock order for the series rows: invoice, then credit note.
        outcome.invoices = _write_invoices(invoice_plans, now=now, run=run, issue=True, actor=actor)
        outcome.credit_notes = _write_credits(credit_plans, now=now, run=run, actor=actor)
        if run is not None and (outcome.invoices or outcome.credit_notes):
            BillingRun.objects.filter(pk=run.pk).update(
                invoices_issued=F("invoices_issued") + len(outcome.invoices),
                credit_notes_issued=F("credit_notes_issued") + len(outcome.credit_notes),
            )
    return outcome


# --- public services ------------------------------------------------------------------------


def billable_leases(*, now: dt.datetime):
    """Ids of leases the daily run looks at, in pk order.

    Not DRAFT or VOID; commenced or within the lookahead; and either not ended long ago or
    still not released (holdover runs until release is confirmed).
    """
    horizon = now + LOOKAHEAD + dt.timedelta(days=1)
    recent = now - dt.timedelta(days=SCAN_ENDED_WITHIN_DAYS)
    return (
        Lease.objects.exclude(status__in=NOT_BILLED)
        .filter(commencement__lt=horizon)
        .filter(
            Q(effective_end__gte=recent)
            | Q(effective_end__isnull=True, term_end__gte=recent)
            | Q(released_at__isnull=True)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def billing_run_claim(
    *, period: dt.date | None = None, now: dt.datetime | None = None, force: bool = False
) -> BillingRun | None:
    """Today's run row for `period`, marked in progress (STARTED); None if it already
    dispatched or finished and `force` is false (a second beat fire the same day).

    A row found STARTED was interrupted, or is running concurrently: it is claimed again,
    which is safe because everything a run does is idempotent.
    """
    now = _now(now)
    if period is not None:
        _check_period(period)
    label = period or proration.month_start((now + LOOKAHEAD).astimezone(dt.UTC).date())
    with transaction.atomic():
        run, _ = BillingRun.objects.get_or_create(
            run_date=now.astimezone(dt.UTC).date(),
            period=label,
            defaults={"as_of": now, "started_at": now, "status": BillingRunStatus.STARTED},
        )
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        if run.status != BillingRunStatus.STARTED:
            if not force:
                return None
            run.status = BillingRunStatus.STARTED
            run.as_of = now
            run.finished_at = None
            run.save(update_fields=["status", "as_of", "finished_at"])
    return run


def billing_run(
    *,
    period: dt.date | None = None,
    now: dt.datetime | None = None,
    chunk_size: int = RUN_CHUNK_SIZE,
) -> BillingRun:
    """Issue everything due as of `now` (through `period` if given), in chunks of leases.

    Catches up on every missed month; issues credit notes for ends that moved into invoiced
    months; bills holdover. One transaction per chunk with a bounded number of queries each.
    Safe to run twice or concurrently: a second run finds nothing left to do.
    """
    now = _now(now)
    # force=True always returns the run.
    run = cast(BillingRun, billing_run_claim(period=period, now=now, force=True))
    ids = list(billable_leases(now=now))
    BillingRun.objects.filter(pk=run.pk).update(leases_scanned=len(ids))
    for offset in range(0, len(ids), chunk_size):
        _bill_leases(ids[offset : offset + chunk_size], now=now, period_cap=period, run=run)
    BillingRun.objects.filter(pk=run.pk).update(
        status=BillingRunStatus.DONE, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def lease_bill(
    *,
    lease_id: int,
    now: dt.datetime | None = None,
    period: dt.date | None = None,
    run: BillingRun | None = None,
    actor: User | None = None,
) -> BillOutcome:
    """Bill one lease: everything due as of `now` (the per-lease task's service); `actor` is
    the operator who asked, None for the scheduler."""
    return _bill_leases([lease_id], now=_now(now), period_cap=period, run=run, actor=actor)


def credit_notes_for_changes(
    *, lease: Lease, now: dt.datetime | None = None, actor: User | None = None
) -> list[CreditNote]:
    """Correct what the lease's issued invoices billed against what its lines now accrue, and
    return the credit notes issued (by `actor`, None for the scheduler).

    For a notice or reclaim that ended lines inside (or before) already-invoiced months; a
    withdrawal that moved an end later gets its supplementary invoice from the same call. Run
    by the billing consumer of lease events (`billing.consumers`) right after the change.
    Idempotent: what was already credited or supplemented counts, so a second call issues
    nothing.
    """
    return _bill_leases([lease.pk], now=_now(now), invoices=False, actor=actor).credit_notes


def lease_rent_due(lease: Lease, start: dt.datetime, end: dt.datetime) -> Decimal:
    """Rent of the lease over `[start, end)` by the billing rule, to the cent.

    The rent seam of `leasing.rules.quote` ("rent still due"): `round(C(end)) − round(C(start))`
    with `C` the lease's exact accrual from commencement, its lines cut at `end` — what the
    invoices net of credit notes will say for that span once the lease ends at `end`.
    """
    if end <= start:
        return ZERO
    lines = list(lease.lines.all())
    before = sum((_cum(line, lease, start) for line in lines), Fraction(0))
    upto = sum((_cum(line, lease, min(end, line.end)) for line in lines), Fraction(0))
    return proration.to_money(upto) - proration.to_money(before)


@transaction.atomic
def invoice_draft_for_period(
    *, lease: Lease, period: dt.date, now: dt.datetime | None = None
) -> Invoice:
    """The rent invoice of `lease` for month `period`: created as a draft if absent, its lines
    recomputed if it is still a draft, returned unchanged once issued (get-or-create)."""
    _check_period(period)
    if lease.status in NOT_BILLED:
        raise LeaseNotBillable(extra={"lease": lease.number, "status": lease.status})
    return _rent_draft(lease.pk, period, lock=True, now=_now(now))


def _rent_draft(lease_id: int, period: dt.date, *, lock: bool, now: dt.datetime) -> Invoice:
    """Create or recompute the rent draft of a lease and month (issued ones are returned
    as they are). `lock=False` when the caller already holds the lease's row lock."""
    data = _load([lease_id], lock=lock, full_invoices=True)
    locked = data.leases[0]
    if locked.status in NOT_BILLED:
        raise LeaseNotBillable(extra={"lease": locked.number, "status": locked.status})
    lines = data.lines.get(locked.pk, [])
    if period not in rent_periods(locked, lines):
        raise PeriodOutsideLease(extra={"lease": locked.number, "period": str(period)})
    current = next(
        (
            i
            for i in data.invoices.get(locked.pk, [])
            if i.kind == InvoiceKind.RENT
            and i.period == period
            and _holds_slot(i.status, i.void_resolution)
        ),
        None,
    )
    if current is not None and current.status != InvoiceStatus.DRAFT:
        return current
    p_start, p_end = proration.period_bounds(period, locked.contract_timezone)
    plan = _InvoicePlan(
        locked,
        InvoiceKind.RENT,
        period,
        p_start,
        p_end,
        _rent_lines(locked, lines, period),
        existing=current,
    )
    return _write_invoices([plan], now=now, run=None, issue=False)[0]


@transaction.atomic
def invoice_issue(
    *, invoice: Invoice, actor: User | None = None, now: dt.datetime | None = None
) -> Invoice:
    """DRAFT → ISSUED by `actor`: the next gapless number, issued now, due in 30 days.

    Locks the lease first, as every billing transaction does (so it serializes with a run or a
    credit computation for the same lease), then the invoice, and re-checks the status under
    the locks. A rent draft's lines are recomputed from the lease as it stands now (a notice or
    reclaim may have moved an end since the draft was made), so what is issued follows the rule;
    a lease no longer billable or a month now outside its life is refused.
    """
    now = _now(now)
    lease_id = Invoice.objects.values_list("lease_id", flat=True).get(pk=invoice.pk)
    lock_row(Lease, lease_id)
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(extra={"invoice": locked.number, "status": locked.status})
    if locked.kind == InvoiceKind.RENT:
        _rent_draft(locked.lease_id, locked.period, lock=False, now=now)
    amounts = list(InvoiceLine.objects.filter(invoice=locked).values_list("amount", flat=True))
    (number,) = _reserve_numbers(SeriesKind.INVOICE, now.astimezone(dt.UTC).year, 1)
    locked.total = sum(amounts, ZERO)
    locked.status = InvoiceStatus.ISSUED
    locked.number = number
    locked.issued_at = now
    locked.due_at = now + dt.timedelta(days=PAYMENT_TERMS_DAYS)
    locked.issued_by = actor
    locked.save(update_fields=["total", "status", "number", "issued_at", "due_at", "issued_by"])
    _announce(DocumentEvent.INVOICE_ISSUED, "invoice", [locked])
    return locked


@transaction.atomic
def invoice_void(
    *,
    invoice: Invoice,
    reason: str,
    resolution: str,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """ISSUED → VOID by `actor`, for `reason` (required), saying what follows (`resolution`):

    * `reissue`: the slot is freed; the next billing run bills the month again under a new
      number, by the rule as the lease stands then (a supplementary invoice: its cause again);
    * `waive`: the slot stays taken and the amount is forgiven: never billed again.

    Refused for an invoice that was partly credited (a re-issue would bill what was credited,
    a waiver would forgive it twice) and for a rent invoice with supplementary invoices that
    hold their slot (void those first). Locks the lease, then the invoice, like every billing
    transaction, so a concurrent run sees the void whole or not at all.
    """
    now = _now(now)
    reason = reason.strip()
    errors = {}
    if not reason:
        errors["reason"] = "A void needs a reason."
    if resolution not in VoidResolution.values:
        errors["resolution"] = f"Must be one of {sorted(VoidResolution.values)}."
    if errors:
        raise InvalidInput(extra={"fields": errors})
    lease_id = Invoice.objects.values_list("lease_id", flat=True).get(pk=invoice.pk)
    lock_row(Lease, lease_id)
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.status != InvoiceStatus.ISSUED:
        raise InvoiceNotIssued(extra={"invoice": locked.number, "status": locked.status})
    if CreditNote.objects.filter(invoice=locked, status=CreditNoteStatus.ISSUED).exists():
        raise InvoiceHasCreditNotes(extra={"invoice": locked.number})
    supplements = Invoice.objects.filter(supplements=locked).filter(HOLDS_SLOT)
    if supplements.exists():
        raise InvoiceHasSupplements(
            extra={
                "invoice": locked.number,
                "supplements": list(supplements.values_list("number", flat=True)),
            }
        )
    locked.status = InvoiceStatus.VOID
    locked.voided_at = now
    locked.voided_by = actor
    locked.void_reason = reason[:500]
    locked.void_resolution = resolution
    locked.is_overdue = False
    locked.save(
        update_fields=[
            "status",
            "voided_at",
            "voided_by",
            "void_reason",
            "void_resolution",
            "is_overdue",
        ]
    )
    _refresh_standing([locked.tenant_id])
    return locked


@transaction.atomic
def invoice_mark_paid(
    *,
    invoice: Invoice,
    paid_at: dt.datetime | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """ISSUED → PAID (at `paid_at`, default now) by `actor`; clears the overdue flag and
    standing."""
    now = _now(now)
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.status != InvoiceStatus.ISSUED:
        raise InvoiceNotIssued(extra={"invoice": locked.number, "status": locked.status})
    locked.status = InvoiceStatus.PAID
    locked.paid_at = paid_at or now
    locked.paid_by = actor
    locked.is_overdue = False
    locked.save(update_fields=["status", "paid_at", "paid_by", "is_overdue"])
    _refresh_standing([locked.tenant_id])
    return locked


def _refresh_standing(tenant_ids: Iterable[int] | None = None) -> tuple[int, int]:
    """Past due while any issued invoice is overdue, current otherwise. Returns the numbers of
    tenants moved to past due and back to current."""
    overdue = Invoice.objects.filter(
        tenant_id=OuterRef("pk"), status=InvoiceStatus.ISSUED, is_overdue=True
    )
    tenants = Tenant.objects.all()
    if tenant_ids is not None:
        tenants = tenants.filter(pk__in=list(tenant_ids))
    to_past_due = (
        tenants.filter(Exists(overdue))
        .exclude(standing=TenantStanding.PAST_DUE)
        .update(standing=TenantStanding.PAST_DUE)
    )
    to_current = (
        tenants.filter(~Exists(overdue))
        .exclude(standing=TenantStanding.CURRENT)
        .update(standing=TenantStanding.CURRENT)
    )
    return to_past_due, to_current


@dataclass(frozen=True)
class OverdueOutcome:
    newly_overdue: int
    tenants_past_due: int
    tenants_current: int


@transaction.atomic
def mark_overdue(*, now: dt.datetime | None = None) -> OverdueOutcome:
    """Flag issued invoices past `due_at` as overdue and set every tenant's standing."""
    now = _now(now)
    newly = Invoice.objects.filter(
        status=InvoiceStatus.ISSUED, due_at__lt=now, is_overdue=False
    ).update(is_overdue=True)
    past_due, current = _refresh_standing()
    return OverdueOutcome(newly, past_due, current)
