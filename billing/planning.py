"""Billing planning: what a lease owes, computed from loaded rows, with no query and no write.

Takes the leases, lines and billing history read by `billing/loading.py` and returns plans
(`Plan`: invoices to issue, credit notes to issue, shortfalls to report) that
`billing/services.py` writes. The rules (docs/rules/billing.md):

* **Rent** is billed per lease line by calendar month of the lease's contract zone, **in
  advance**: a month's invoice is issued `INVOICE_LOOKAHEAD_DAYS` (7) days before the month
  starts, and the first, partial month at commencement. A line's billable life is
  `[lease.commencement, line end)` with line end = the earliest of the line's effective end, the
  lease's effective end and the term end. Amounts follow the cumulative rule of
  `billing/proration.py`, so a line's invoices sum to its exact accrual rounded once; the
  lease-level amount is split across its lines by `split_cents`.
  DRAFT and VOID leases are never billed; a CANCELLED lease's life is empty.
* **One invoice per lease, kind and month** among the invoices that hold the month
  (`holds_slot`): a void resolved `reissue` frees the month, one resolved `waive` keeps it.
* **Corrections** keep a lease's rent invoices, net of credit notes, equal to its exact accrual
  rounded once, after every run, whatever the order of notices, withdrawals and runs. For
  every month whose rent invoice is issued or paid, each line's net billed (its lines on the
  month's rent and supplementary invoices, minus what was credited) is compared with its
  share by the rule at the current ends (`rent_split`). The lease owes back `Σ (net − due)`:
  when positive (a notice or reclaim moved an end earlier) the excess is credited, one credit
  note per invoice; when negative (an end moved later inside an invoiced month: a withdrawn
  notice) the shortfall is billed on a **supplementary invoice** per month, referencing the
  month's rent invoice, once per lease, month and cause (`notice_withdrawn:<id>`). Idempotent
  by construction: a second computation finds nothing left. A waived month is settled (left
  out); a waived supplementary invoice counts as billed.
* **Holdover**: nodes not released within `drain_grace_hours` after the lease's end are billed
  at 150 % of the per-diem (`monthly_rate / days_in_month` of each month) for every local day
  from the end until the day release is confirmed (a started day counts), for the lines still
  running at the lease's end. If release is confirmed within the grace, nothing is charged.
  Holdover is billed in arrears on a separate invoice of kind HOLDOVER per lease and month,
  issued once the month is over or the release is confirmed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from common.contract_time import ceil_local_midnight, local_date
from common.money import ZERO
from leasing.models import Lease, LeaseLine

from . import proration
from .choices import (
    BILLED_STATUSES,
    NOT_BILLED,
    RENT_KINDS,
    CreditNoteKind,
    InvoiceKind,
    InvoiceStatus,
    VoidResolution,
)
from .constants import INVOICE_LOOKAHEAD_DAYS
from .models import CreditNoteLine, Invoice, InvoiceLine

LOOKAHEAD = dt.timedelta(days=INVOICE_LOOKAHEAD_DAYS)
HOLDOVER_MULTIPLIER = proration.HOLDOVER_MULTIPLIER


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


@dataclass
class InvoicePlan:
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
class CreditPlan:
    invoice: Invoice
    lines: list[CreditNoteLine]
    reason: str
    kind: str = CreditNoteKind.EARLY_END
    period: dt.date | None = None  # a service credit's month

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass
class Plan:
    invoices: list[InvoicePlan] = field(default_factory=list)
    credits: list[CreditPlan] = field(default_factory=list)
    # (lease, amount) a holdover invoice fell short of (an end moved later after a holdover
    # credit): reported, never charged
    underbilled: list[tuple[int, Decimal]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.invoices or self.credits)


class Slot(NamedTuple):
    """What the runs read of an existing invoice to know a month is taken."""

    pk: int
    kind: str
    period: dt.date
    status: str


@dataclass
class Loaded:
    leases: list[Lease]
    lines: dict[int, list[LeaseLine]]
    # lease id → (kind, month) → the invoice in that slot, for every lease (plain rows)
    slots: dict[int, dict[tuple[str, dt.date], Slot]]
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
    # line id → acceptance instants of its hand-over nodes accepted after commencement (None:
    # still pending); lines whose nodes were all accepted by commencement are absent
    delays: dict[int, list[dt.datetime | None]] = field(default_factory=dict)
    # invoice line id → already credited for delivery (left out of `credited`)
    delivered: dict[int, Decimal] = field(default_factory=dict)
    # invoice lines credited in full by a late-delivery cancellation (billing/cancellation.py):
    # settled, left out of every correction
    settled: set[int] = field(default_factory=set)


def holds_slot(status: str, void_resolution: str) -> bool:
    """Whether an invoice holds its slot: it is not void resolved `reissue` (`HOLDS_SLOT`)."""
    return not (status == InvoiceStatus.VOID and void_resolution == VoidResolution.REISSUE)


def takes_slot(kind: str, status: str, void_resolution: str) -> bool:
    """Whether an invoice holds a (lease, kind, month) slot: rent or holdover, holding it."""
    return kind != InvoiceKind.SUPPLEMENTARY and holds_slot(status, void_resolution)


def line_accrual(
    line: LeaseLine, lease: Lease, through: dt.datetime, *, life_end: dt.datetime | None = None
) -> Fraction:
    """Exact rent of a line from commencement up to `through` (zero before, flat after); the
    line ends at `life_end` when given (an end known at some date), else at its own end."""
    return proration.cumulative(
        line.monthly_rate,
        life_start=lease.commencement,
        life_end=line.end if life_end is None else life_end,
        through=through,
        tz=lease.contract_timezone,
    )


def split_cents(base: Fraction, parts: Sequence[Fraction]) -> list[Decimal]:
    """Cents for consecutive exact `parts` that follow an exact `base`, rounded cumulatively.

    Part i gets `round(base + A_i) − round(base + A_(i−1))` with `A_i` the sum of parts 1..i, so
    the cents sum to `round(base + A_n) − round(base)` exactly, none is negative when the parts
    are not, and a zero part gets zero. This is how a lease-level cumulative amount is split
    across the lease's lines without losing or inventing a cent. The split follows line order
    (running totals); the largest-remainder split decided in docs/rules/billing.md is not built.
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
    accrual rounded once. The lines share that amount by cumulative rounding (`split_cents`).
    """
    before = [line_accrual(line, lease, p_start) for line in lines]
    parts = [line_accrual(line, lease, p_end) - b for line, b in zip(lines, before, strict=True)]
    return split_cents(sum(before, Fraction(0)), parts)


def _days_held(lease: Lease, line: LeaseLine, start: dt.datetime, end: dt.datetime) -> int:
    """Local days of the line's billable life `[commencement, line end)` within `[start, end)`."""
    return proration.overlap_days(
        life_start=lease.commencement,
        life_end=line.end,
        period_start=start,
        period_end=end,
        tz=lease.contract_timezone,
    )


def rent_lines(lease: Lease, lines: Sequence[LeaseLine], period: dt.date) -> list[InvoiceLine]:
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
    amounts = split_cents(base, [cum(line, p_end) - cum(line, p_start) for line in held])
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
    plan: Plan,
    *,
    reason: str,
    label: str,
    why: str,
    kind: str = CreditNoteKind.EARLY_END,
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
    by_invoice: dict[int, CreditPlan] = {}
    for c, amount in zip(candidates, amounts, strict=True):
        if amount <= 0:
            continue
        head = f"{label} {_period_label(c.invoice.period)}: {_line_label(c.line)}"
        note = by_invoice.setdefault(
            c.invoice.pk, CreditPlan(c.invoice, [], reason=reason, kind=kind)
        )
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


def _month_documents(data: Loaded, lease: Lease) -> dict[dt.date, list[Invoice]]:
    """The lease's rent and supplementary invoices (every status) by month."""
    months: dict[dt.date, list[Invoice]] = defaultdict(list)
    for inv in data.invoices.get(lease.pk, []):
        if inv.kind in RENT_KINDS:
            months[inv.period].append(inv)
    return months


def _is_waived(invoice: Invoice) -> bool:
    return invoice.status == InvoiceStatus.VOID and invoice.void_resolution == VoidResolution.WAIVE


def _plan_rent_corrections(
    lease: Lease, lines: Sequence[LeaseLine], data: Loaded, plan: Plan, *, now: dt.datetime
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
                    if inv_line.lease_line_id in by_line and inv_line.pk not in data.settled:
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
    data: Loaded,
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
    used = {i.cause for i in supplements if holds_slot(i.status, i.void_resolution)}
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
    data: Loaded,
    plan: Plan,
    *,
    now: dt.datetime,
) -> None:
    """Bill exactly `need` over the shortfalls, trimmed to the lease-level total: one
    supplementary invoice per month, referencing the month's rent invoice."""
    tz = lease.contract_timezone
    amounts = trim_to([s.amount for s in shortfalls], need)
    by_month: dict[dt.date, InvoicePlan] = {}
    for s, amount in zip(shortfalls, amounts, strict=True):
        if amount <= 0:
            continue
        original = s.original
        period = original.period
        supplement = by_month.get(period)
        if supplement is None:
            cause = supplement_cause(months[period], data.withdrawn.get(lease.pk, []), now=now)
            supplement = by_month[period] = InvoicePlan(
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
    lease: Lease, lines: Sequence[LeaseLine], data: Loaded, plan: Plan, *, now: dt.datetime
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
        kind=CreditNoteKind.HOLDOVER,
    )


def _holdover_credit_due(
    lease: Lease, lines: Sequence[LeaseLine], data: Loaded, *, now: dt.datetime
) -> bool:
    """Whether a released lease's issued holdover now exceeds what is due (exact, no query)."""
    if not data.holdover_lines or lease.released_at is None:
        return False
    probe = Plan()
    _plan_holdover_credits(lease, lines, data, probe, now=now)
    return bool(probe.credits)


def _due_slots(
    lease: Lease,
    lines: Sequence[LeaseLine],
    data: Loaded,
    *,
    now: dt.datetime,
    period_cap: dt.date | None,
) -> list[tuple[str, dt.date, Invoice | None, tuple | None]]:
    """(kind, month, draft or None, holdover span) of every invoice due and not yet issued."""
    existing = data.slots.get(lease.pk, {})
    drafts: dict[int, Invoice] | None = None

    def draft(slot: Slot) -> Invoice | None:
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


def _ends_changed(lease: Lease, lines: Sequence[LeaseLine], data: Loaded) -> bool:
    """Whether any issued rent invoice of the lease may no longer match its lines (see
    `changed_lease_ids`, `withdrawn_notices`). If none changed, the rule gives the same
    amounts: nothing to correct. After a correction the test stays true for that lease (the
    invoice keeps its old `service_end`); the full computation then finds nothing more."""
    return lease.pk in data.changed


def _rent_correction_due(
    lease: Lease, lines: Sequence[LeaseLine], data: Loaded, *, now: dt.datetime
) -> bool:
    """Whether a changed lease's rent needs a credit or a supplement now (exact, no query):
    a lease corrected once stays changed, and must not be locked by every run for nothing."""
    if not _ends_changed(lease, lines, data):
        return False
    probe = Plan()
    _plan_rent_corrections(lease, lines, data, probe, now=now)
    return bool(probe)


def node_accrual_start(lease: Lease, accepted_at: dt.datetime | None, *, now: dt.datetime):
    """When a hand-over node starts to accrue rent: the later of the commencement and the local
    midnight at or after its acceptance. A node still pending accrues from no earlier than the
    local midnight at or after `now` (so the days before are credited now, the rest once it is
    accepted)."""
    tz = lease.contract_timezone
    at = ceil_local_midnight(accepted_at if accepted_at is not None else now, tz)
    return max(lease.commencement, at)


def _delay_accrual(
    lease: Lease, line: LeaseLine, starts: Sequence[dt.datetime], through: dt.datetime
) -> Fraction:
    """Exact rent of the line's nodes over `[commencement, start)` of each delayed node, up to
    `through`: what the line does not owe for its late nodes (`rate / node_count` each)."""
    share = Fraction(line.monthly_rate) / line.node_count
    return sum(
        (
            proration.cumulative(
                share,
                life_start=lease.commencement,
                life_end=min(start, line.end),
                through=through,
                tz=lease.contract_timezone,
            )
            for start in starts[: line.node_count]
        ),
        Fraction(0),
    )


def accepted_rent_split(
    lease: Lease,
    lines: Sequence[LeaseLine],
    p_start: dt.datetime,
    p_end: dt.datetime,
    starts: dict[int, list[dt.datetime]],
) -> list[Decimal]:
    """`rent_split` of the rent of accepted node-time only: the same lease-level rounding of
    `C(t) − delay(t)`, so a lease's rent net of delivery credits is its exact accrual of
    accepted node-time rounded once."""

    def cum(line: LeaseLine, t: dt.datetime) -> Fraction:
        return line_accrual(line, lease, t) - _delay_accrual(
            lease, line, starts.get(line.pk, []), t
        )

    before = [cum(line, p_start) for line in lines]
    parts = [cum(line, p_end) - b for line, b in zip(lines, before, strict=True)]
    return split_cents(sum(before, Fraction(0)), parts)


def _delay_days(lease: Lease, line: LeaseLine, starts, p_start, p_end) -> int:
    return sum(
        proration.overlap_days(
            life_start=lease.commencement,
            life_end=min(start, line.end),
            period_start=p_start,
            period_end=p_end,
            tz=lease.contract_timezone,
        )
        for start in starts[: line.node_count]
    )


def _plan_delivery_credits(
    lease: Lease, lines: Sequence[LeaseLine], data: Loaded, plan: Plan, *, now: dt.datetime
) -> None:
    """Credit the rent invoiced for node-days before acceptance (docs/rules/fleet.md, "Rent
    follows accepted nodes").

    Per month with an issued or paid rent invoice and per line: what delivery is owed is the
    line's share of the month at the current ends (`rent_split`) minus its share of accepted
    node-time (`accepted_rent_split`), less what was credited for delivery already. The lease
    total is credited, trimmed over the lines as rent corrections are (`_plan_owed_back`). A
    negative total (an acceptance recorded later with an earlier instant) is reported as
    underbilled, never charged.
    """
    starts = {
        line.pk: [node_accrual_start(lease, at, now=now) for at in data.delays.get(line.pk, [])]
        for line in lines
    }
    starts = {k: v for k, v in starts.items() if any(s > lease.commencement for s in v)}
    if not starts:
        return
    owed = ZERO
    delivered = ZERO
    billed_to = lease.commencement
    candidates: list[_CreditCandidate] = []
    for docs in _month_documents(data, lease).values():
        original = next(
            (i for i in docs if i.kind == InvoiceKind.RENT and i.status in BILLED_STATUSES), None
        )
        if original is None:
            continue
        p_start, p_end = original.period_start, original.period_end
        billed_to = max(billed_to, p_end)
        full = rent_split(lease, lines, p_start, p_end)
        accepted = accepted_rent_split(lease, lines, p_start, p_end, starts)
        billed = {il.lease_line_id: il for il in data.billed_lines.get(original.pk, [])}
        for line, f, a in zip(lines, full, accepted, strict=True):
            inv_line = billed.get(line.pk)
            if inv_line is None or inv_line.pk in data.settled:
                continue
            done = data.delivered.get(inv_line.pk, ZERO)
            delivered += done
            diff = f - a - done
            owed += diff
            node_days = _delay_days(lease, line, starts.get(line.pk, []), p_start, p_end)
            candidates.append(
                _CreditCandidate(original, inv_line, line, diff, inv_line.service_start, node_days)
            )
    if billed_to < max((line.end for line in lines), default=billed_to):
        # Before the last month is billed, never more than the exact delay accrued so far,
        # rounded down: the months' rounded differences may swing a cent either way, and the
        # total must land on round(C) − round(C − delay) at the end without ever going back.
        delay = sum(
            (_delay_accrual(lease, line, starts.get(line.pk, []), billed_to) for line in lines),
            Fraction(0),
        )
        floor_cents = Decimal(math.floor(delay * 100)) / 100
        owed = min(owed, floor_cents - delivered)
    if owed < 0:
        plan.underbilled.append((lease.pk, owed))
        return
    _plan_owed_back(
        lease,
        candidates,
        owed,
        plan,
        reason="Rent invoiced for nodes before their acceptance",
        label="Delivery credit",
        why="(node-days) before acceptance",
        kind=CreditNoteKind.DELIVERY,
    )


def _delivery_due(
    lease: Lease, lines: Sequence[LeaseLine], data: Loaded, *, now: dt.datetime
) -> bool:
    if not any(line.pk in data.delays for line in lines):
        return False
    probe = Plan()
    _plan_delivery_credits(lease, lines, data, probe, now=now)
    return bool(probe)


def has_work(
    lease: Lease,
    data: Loaded,
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
        or _delivery_due(lease, lines, data, now=now)
    )


def plan_lease(
    lease: Lease,
    data: Loaded,
    *,
    now: dt.datetime,
    period_cap: dt.date | None,
    invoices: bool = True,
    credits: bool = True,
) -> Plan:
    plan = Plan()
    if lease.status in NOT_BILLED:
        return plan
    lines = data.lines.get(lease.pk, [])
    tz = lease.contract_timezone
    if invoices:
        for kind, period, current, span in _due_slots(
            lease, lines, data, now=now, period_cap=period_cap
        ):
            if kind == InvoiceKind.RENT:
                invoice_lines = rent_lines(lease, lines, period)
            else:
                assert span is not None  # a holdover slot carries its span
                invoice_lines = _holdover_lines(lease, lines, period, span)
                if not invoice_lines:
                    continue
            p_start, p_end = proration.period_bounds(period, tz)
            plan.invoices.append(
                InvoicePlan(lease, kind, period, p_start, p_end, invoice_lines, existing=current)
            )
    if credits and _ends_changed(lease, lines, data):
        _plan_rent_corrections(lease, lines, data, plan, now=now)
    if credits and lease.released_at is not None and data.holdover_lines:
        _plan_holdover_credits(lease, lines, data, plan, now=now)
    if credits and any(line.pk in data.delays for line in lines):
        _plan_delivery_credits(lease, lines, data, plan, now=now)
    return plan
