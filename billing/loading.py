"""Billing loading: what the billing runs read, in a bounded number of queries.

The leases a run looks at (`billable_leases`), their lines, and what was already billed to them
(`load`, `load_history`, `load_locked` under the leases' row locks), returned as `Loaded` rows for
`billing/planning.py` to plan from. Only the billing history of leases that may need a correction
is read in full (`changed_lease_ids`, `withdrawn_notices`); see docs/rules/billing.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from django.db.models import F, Q
from django.db.models.functions import Coalesce, Least

from clusters.models import Cluster
from common.money import ZERO
from leasing.choices import NoticeStatus
from leasing.models import Allocation, Lease, LeaseLine, Notice

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
from .constants import SCAN_ENDED_WITHIN_DAYS
from .models import HOLDS_SLOT, CreditNoteLine, Invoice, InvoiceLine
from .planning import LOOKAHEAD, Loaded, Slot, takes_slot

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


def delayed_nodes(
    lease_ids: Sequence[int],
) -> tuple[dict[int, list[dt.datetime | None]], set[int]]:
    """Hand-over nodes of these leases not accepted by their lease's commencement: line id →
    their acceptance instants (None: pending), and the leases concerned. One query over the
    few such allocations (a spare swapped in by a replacement is not a hand-over: its slot was
    accepted once already, and its downtime is the service credit's business)."""
    delays: dict[int, list[dt.datetime | None]] = defaultdict(list)
    leases: set[int] = set()
    for line_id, lease_id, accepted_at in (
        Allocation.objects.filter(line__lease_id__in=lease_ids, replacement_for__isnull=True)
        .filter(Q(accepted_at__isnull=True) | Q(accepted_at__gt=F("line__lease__commencement")))
        .order_by("line_id", "pk")
        .values_list("line_id", "line__lease_id", "accepted_at")
    ):
        delays[line_id].append(accepted_at)
        leases.add(lease_id)
    return dict(delays), leases


def _released_with_holdover(
    leases: Sequence[Lease], slots: dict[int, dict[tuple[str, dt.date], Slot]]
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


def load(lease_ids: Sequence[int], *, lock: bool, full_invoices: bool = False) -> Loaded:
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
    return load_history(leases, load_lines(leases), full_invoices=full_invoices)


def load_lines(leases: Sequence[Lease]) -> dict[int, list[LeaseLine]]:
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


def load_history(
    leases: list[Lease],
    lines: dict[int, list[LeaseLine]],
    *,
    full_invoices: bool = False,
    slots_only: bool = False,
) -> Loaded:
    """What was billed to these leases (see `load`). With `slots_only`, only which months
    are taken (two queries): enough to see that invoices are due, not to plan credits."""
    by_id = {lease.pk: lease for lease in leases}
    slots: dict[int, dict[tuple[str, dt.date], Slot]] = defaultdict(dict)
    invoices: dict[int, list[Invoice]] = defaultdict(list)
    invoice_models = Invoice.objects.only(*INVOICE_FIELDS).order_by("period", "id")
    if full_invoices:
        for invoice in invoice_models.filter(lease_id__in=by_id):
            invoices[invoice.lease_id].append(invoice)
            if takes_slot(invoice.kind, invoice.status, invoice.void_resolution):
                slots[invoice.lease_id][(invoice.kind, invoice.period)] = Slot(
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
            slots[lease_id][(kind, period)] = Slot(pk, kind, period, status)
            if status == InvoiceStatus.DRAFT:
                with_drafts.add(lease_id)
    if slots_only:
        return Loaded(leases, lines, slots, invoices, {}, {}, set())
    withdrawn = withdrawn_notices(list(by_id)) if by_id else {}
    delays, delayed = delayed_nodes(list(by_id)) if by_id else ({}, set())
    changed = (changed_lease_ids(list(by_id)) if by_id else set()) | set(withdrawn) | delayed
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
    delivered: dict[int, Decimal] = defaultdict(lambda: ZERO)
    settled: set[int] = set()
    if with_credits:
        # Service credits are compensation, delivery credits are counted apart: neither is a
        # correction of the rent the ends make due.
        for inv_line_id, amount, days, start, kind in (
            CreditNoteLine.objects.filter(
                credit_note__lease_id__in=with_credits, credit_note__status=CreditNoteStatus.ISSUED
            )
            .exclude(credit_note__kind=CreditNoteKind.SERVICE)
            .values_list("invoice_line_id", "amount", "days", "service_start", "credit_note__kind")
        ):
            if kind == CreditNoteKind.CANCELLATION:
                # Everything it billed came back with its line's late-delivery cancellation.
                settled.add(inv_line_id)
                continue
            if kind == CreditNoteKind.DELIVERY:
                delivered[inv_line_id] += amount
                continue
            credited[inv_line_id] += amount
            so_far, first = credited_days.get(inv_line_id, (0, start))
            credited_days[inv_line_id] = (so_far + days, min(first, start))
    return Loaded(
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
        delays,
        delivered,
        settled,
    )


LEASE_ATTNAMES = tuple(f.attname for f in Lease._meta.concrete_fields)
LINE_FIELDS = ("id", "lease_id", "cluster_id", "node_count", "monthly_rate", "effective_end")


def load_locked(lease_ids: Sequence[int], seen: Loaded) -> Loaded:
    """`load` under the leases' row locks (taken here, in pk order), reusing the leases and
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
        return load(lease_ids, lock=False)  # the locks are held: a full read
    return load_history(seen.leases, seen.lines)
