"""Billing reads for operator pages: the printable invoice and the revenue summary."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, Prefetch, QuerySet, Sum
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from common.money import ZERO, round_money
from leasing import rules
from leasing.api.selectors import requested_end_instant
from leasing.choices import LeaseStatus, NoticeOutcome
from leasing.exceptions import NoticeNotAllowed
from leasing.models import Lease, LeaseLine, Tenant
from leasing.services import SIGNED  # a signed lease: the tenant may give notice and quotes

from . import proration
from .choices import (
    BILLED_STATUSES,
    NOT_BILLED,
    RENT_KINDS,
    CreditNoteKind,
    CreditNoteStatus,
    InvoiceKind,
    InvoiceStatus,
    VoidResolution,
)
from .models import CreditNote, CreditNoteLine, Invoice
from .services import lease_rent_due


def invoice_for_print(pk: int) -> Invoice:
    """One invoice with everything its printed page shows, in three queries."""
    return (
        Invoice.objects.select_related("tenant", "lease", "supplements")
        .prefetch_related(
            "lines__lease_line__cluster",
            Prefetch(
                "credit_notes",
                queryset=CreditNote.objects.filter(status=CreditNoteStatus.ISSUED).order_by("pk"),
            ),
        )
        .get(pk=pk)
    )


def _month_add(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass
class RevenueSummary:
    """Billed (issued invoices net of credit notes, by the invoice's month) and accrued (rent
    earned by each line in each month of its contract zone, rounded per line and month, for
    display) revenue per month and per tenant, plus the current monthly run-rate (the monthly
    rates of every line holding capacity now). Holdover is billed, not accrued."""

    months: list[dt.date]
    billed: dict[dt.date, Decimal]
    accrued: dict[dt.date, Decimal]
    tenants: list[Tenant]
    billed_by_tenant: dict[int, dict[dt.date, Decimal]]
    accrued_by_tenant: dict[int, dict[dt.date, Decimal]]
    run_rate: Decimal
    run_rate_by_tenant: dict[int, Decimal] = field(default_factory=dict)

    def tenant_rows(self) -> list[dict]:
        rows = []
        for tenant in self.tenants:
            billed = self.billed_by_tenant.get(tenant.pk, {})
            accrued = self.accrued_by_tenant.get(tenant.pk, {})
            rows.append(
                {
                    "tenant": tenant,
                    "cells": [(billed.get(m, ZERO), accrued.get(m, ZERO)) for m in self.months],
                    "billed_total": sum(billed.values(), ZERO),
                    "accrued_total": sum(accrued.values(), ZERO),
                    "run_rate": self.run_rate_by_tenant.get(tenant.pk, ZERO),
                }
            )
        return rows


# Local midnights lie within 14 hours of UTC midnight in every zone: a day either side covers them.
_ZONE_MARGIN = dt.timedelta(days=1)


def lines_overlapping(start: dt.datetime, end: dt.datetime) -> QuerySet[LeaseLine]:
    """Lines of billed leases whose life `[commencement, line end)` can overlap the calendar
    months spanning the UTC instants `[start, end)` in any contract zone (a day's margin each
    side), with their lease. Line end is `LeaseLine.end`: the earliest of the line's effective
    end, the lease's and the term end (the lease's effective end never passes its term end)."""
    term_end = F("lease__term_end")
    line_end = Least(
        Coalesce(F("effective_end"), term_end),
        Coalesce(F("lease__effective_end"), term_end),
    )
    return (
        LeaseLine.objects.select_related("lease")
        .exclude(lease__status__in=NOT_BILLED)
        .filter(lease__commencement__lt=end + _ZONE_MARGIN)
        .alias(line_end=line_end)
        .filter(line_end__gt=start - _ZONE_MARGIN)
    )


def revenue_summary(
    *, now: dt.datetime | None = None, months_back: int = 11, months_ahead: int = 1
) -> RevenueSummary:
    """Revenue over the months `[now − months_back, now + months_ahead]`, in four queries.

    Sums are taken in Python: SQLite would sum decimals as floats.
    """
    now = now or timezone.now()
    this_month = proration.month_start(now.astimezone(dt.UTC).date())
    months = [_month_add(this_month, k) for k in range(-months_back, months_ahead + 1)]
    first, after = months[0], _month_add(months[-1], 1)

    billed: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    billed_by_tenant: dict[int, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for tenant_id, period, total in Invoice.objects.filter(
        status__in=BILLED_STATUSES, period__gte=first, period__lt=after
    ).values_list("tenant_id", "period", "total"):
        billed[period] += total
        billed_by_tenant[tenant_id][period] += total
    for tenant_id, period, total in CreditNote.objects.filter(
        status=CreditNoteStatus.ISSUED, invoice__period__gte=first, invoice__period__lt=after
    ).values_list("tenant_id", "invoice__period", "total"):
        billed[period] -= total
        billed_by_tenant[tenant_id][period] -= total

    accrued: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    accrued_by_tenant: dict[int, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    run_rate = ZERO
    run_rate_by_tenant: dict[int, Decimal] = defaultdict(lambda: ZERO)
    # Only lines alive in the range (and now, for the run-rate), not every line ever written.
    range_start = min(dt.datetime.combine(first, dt.time(), dt.UTC), now)
    range_end = max(dt.datetime.combine(after, dt.time(), dt.UTC), now)
    for line in lines_overlapping(range_start, range_end):
        lease = line.lease
        tz = lease.contract_timezone
        end = line.end
        if end <= lease.commencement:
            continue
        tenant_id = lease.tenant_id
        if lease.commencement <= now < end:
            run_rate += line.monthly_rate
            run_rate_by_tenant[tenant_id] += line.monthly_rate
        for month in months:
            p_start, p_end = proration.period_bounds(month, tz)
            lo, hi = max(p_start, lease.commencement), min(p_end, end)
            if hi <= lo:
                continue
            amount = proration.to_money(proration.accrual(line.monthly_rate, lo, hi, tz))
            accrued[month] += amount
            accrued_by_tenant[tenant_id][month] += amount

    tenant_ids = set(billed_by_tenant) | set(accrued_by_tenant)
    tenants = list(Tenant.objects.filter(pk__in=tenant_ids).order_by("name"))
    return RevenueSummary(
        months=months,
        billed=dict(billed),
        accrued=dict(accrued),
        tenants=tenants,
        billed_by_tenant=billed_by_tenant,
        accrued_by_tenant=accrued_by_tenant,
        run_rate=run_rate,
        run_rate_by_tenant=dict(run_rate_by_tenant),
    )


# --- termination quote ------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminationQuote:
    """`rules.quote` plus money: rent over the lease's remaining life, what is invoiced net of
    credit notes, and the difference either way (still to invoice, or to be credited)."""

    lease: int
    quote: rules.Quote
    currency: str
    rent_due: Decimal
    rent_invoiced: Decimal
    rent_still_due: Decimal
    credit_due: Decimal
    cancels_successor: int | None = None


def lease_termination_quote(
    lease: Lease, *, notice_date: dt.date, requested_end_date: dt.date | None = None
) -> TerminationQuote:
    """What a tenant notice on `notice_date` would do: effective end, outcome and the rent.

    `rent_due` is the rent of `[commencement, holds_until)` by billing's rule (each line to its
    own end); `rent_invoiced` the lease's issued rent and supplementary invoices minus its
    credit notes. Months whose rent invoice was waived are settled (never billed again), so
    their rent counts toward neither `rent_still_due` nor `credit_due`; a waived supplementary
    invoice settles its amount. A month voided to be re-issued is still due. When the end falls
    inside invoiced months, `credit_due` is what the credit note will say.
    """
    if lease.status not in SIGNED:
        raise NoticeNotAllowed(
            "A quote needs a signed lease (scheduled or active).", extra={"status": lease.status}
        )
    requested_end = requested_end_instant(lease, requested_end_date)
    q = rules.quote(lease, notice_date, requested_end, rent=lease_rent_due)
    rent_due = round_money(q.rent_due or ZERO)
    invoiced = Invoice.objects.filter(
        lease=lease,
        kind__in=RENT_KINDS,
        status__in=(InvoiceStatus.ISSUED, InvoiceStatus.PAID),
    ).aggregate(total=Sum("total"))["total"] or Decimal(0)
    credited = (
        CreditNote.objects.filter(lease=lease, status=CreditNoteStatus.ISSUED)
        .exclude(kind=CreditNoteKind.SERVICE)  # compensation, not a correction of rent
        .aggregate(total=Sum("total"))["total"]
        or Decimal(0)
    )
    # ...except on an invoice line a late-delivery cancellation settled: the cancellation
    # credited what it billed net of every earlier credit, service credits included
    # (billing/cancellation.py), so together they give back exactly what was billed.
    settled = CreditNoteLine.objects.filter(
        credit_note__lease=lease, credit_note__kind=CreditNoteKind.CANCELLATION
    ).values("invoice_line_id")
    credited += CreditNoteLine.objects.filter(
        credit_note__lease=lease,
        credit_note__status=CreditNoteStatus.ISSUED,
        credit_note__kind=CreditNoteKind.SERVICE,
        invoice_line_id__in=settled,
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
    net = round_money(invoiced - credited)
    # A waived rent invoice keeps its month's slot: billing never invoices nor credits that
    # month again, so its rent (by the same rule, up to the end) is settled, not still due; a
    # waived supplementary invoice settles what it billed.
    waived = ZERO
    if q.rent_due:
        for kind, total, p_start, p_end in Invoice.objects.filter(
            lease=lease,
            kind__in=RENT_KINDS,
            status=InvoiceStatus.VOID,
            void_resolution=VoidResolution.WAIVE,
        ).values_list("kind", "total", "period_start", "period_end"):
            upto = min(p_end, q.holds_until)
            if kind == InvoiceKind.SUPPLEMENTARY:
                waived += total if upto > p_start else ZERO
            elif upto > p_start:
                waived += lease_rent_due(lease, max(p_start, lease.commencement), upto)
    payable = rent_due - waived
    # A notice that ends the lease before its term end cancels its renewal, which commences
    # at the term end (the cancellation rule).
    renewal = (
        Lease.objects.filter(predecessor=lease)
        .exclude(status__in=(LeaseStatus.VOID, LeaseStatus.CANCELLED))
        .values_list("pk", flat=True)
        .first()
        if q.outcome != NoticeOutcome.MOOT
        else None
    )
    return TerminationQuote(
        lease=lease.pk,
        quote=q,
        currency=lease.currency,
        rent_due=rent_due,
        rent_invoiced=net,
        rent_still_due=max(payable - net, ZERO),
        credit_due=max(net - payable, ZERO),
        cancels_successor=renewal,
    )
