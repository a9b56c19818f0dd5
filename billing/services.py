"""Billing services: every write of billing goes through here.

They load with `billing/loading.py`, plan with `billing/planning.py` (the rules of rent,
corrections and holdover) and write what was planned. The rules of the writes
(docs/rules/billing.md):

* **One invoice per lease, kind and month** (unique constraint) among the invoices that hold
  the month. **Voiding** needs a reason and a resolution, and records who did it: `reissue`
  frees the month, and the next run bills it again under a new number (by the rule, as the
  lease stands then); `waive` keeps the month taken: it is never billed again (the quote
  counts it as settled). A void never silently forgives a month.
* **Corrections** (credit notes and supplementary invoices) are issued right after the change
  that calls for them, by the billing consumer of lease events (`billing/consumers.py`), and
  recomputed by every run (catch-up).
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, cast

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from common import events
from common.clock import resolve_now as _now
from common.db import lock_row
from common.exceptions import InvalidInput
from common.money import ZERO
from leasing.models import Lease

from . import aging, ledger, payments, proration
from .choices import (
    NOT_BILLED,
    OPEN_STATUSES,
    BillingRunStatus,
    CreditNoteStatus,
    DocumentEvent,
    InvoiceKind,
    InvoiceStatus,
    PaymentMethod,
    ReceivableEvent,
    SeriesKind,
    VoidResolution,
)
from .constants import NUMBER_DIGITS, NUMBER_PREFIX, PAYMENT_TERMS_DAYS, RUN_CHUNK_SIZE
from .exceptions import (
    InvalidPeriod,
    InvoiceHasCreditNotes,
    InvoiceHasSupplements,
    InvoiceNotDraft,
    InvoiceNotIssued,
    LeaseNotBillable,
    PeriodOutsideLease,
)
from .loading import billable_leases, load, load_history, load_lines, load_locked
from .models import (
    HOLDS_SLOT,
    BillingRun,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    NumberSeries,
)
from .planning import (
    LOOKAHEAD,
    CreditPlan,
    InvoicePlan,
    has_work,
    holds_slot,
    line_accrual,
    plan_lease,
    rent_lines,
    rent_periods,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# --- small helpers --------------------------------------------------------------------------------


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
    plans: Sequence[InvoicePlan],
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
        _announce(DocumentEvent.INVOICE_ISSUED, "invoice", invoices)
        _receivables_on_issue(invoices, now=now)
    return invoices


def _receivables_on_issue(invoices: Sequence[Invoice], *, now: dt.datetime) -> None:
    """In the issuing transaction: the ledger's postings and revenue schedules, then the
    tenants' unapplied cash and credit applied to the new invoices (billing/payments.py)."""
    ledger.invoices_issued(invoices)
    payments.apply_on_issue(invoices, now=now)


def _announce(kind: str, subject: str, documents: Sequence[Invoice] | Sequence[CreditNote]) -> None:
    """Emit `kind` for each issued document, in the issuing transaction: one batch, so a
    chunk of the run costs a bounded number of queries however many documents it issues."""
    events.emit_many(
        events.Event(
            kind,
            subject=subject,
            subject_id=doc.pk,
            payload={"tenant": doc.tenant_id, "lease": doc.lease_id, "number": doc.number},
            occurred_at=cast(dt.datetime, doc.issued_at),  # set on every issued document
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
    """DRAFT → ISSUED with each row's number, in one statement per batch, freezing on each
    document its lease's PO number as it stands now (the leases are locked by the issuing
    transaction); the rows in hand are given their number, instants and PO number.

    `bulk_update` builds a CASE per row and field (seconds for thousands of rows); a join with
    a VALUES list is one cheap statement. The syntax (WITH … UPDATE … FROM … RETURNING) is
    shared by PostgreSQL and SQLite ≥ 3.35.
    """
    table = model._meta.db_table
    lease_table = Lease._meta.db_table
    ops = connection.ops
    sets = (  # table and column names are constants; every value is a parameter
        "status = %s, number = v.number, issued_at = %s, po_number = (SELECT po_number FROM "
        f"{lease_table} WHERE {lease_table}.id = {table}.lease_id)"  # nosec B608
    )
    status = InvoiceStatus.ISSUED if model is Invoice else CreditNoteStatus.ISSUED
    params_head: list = [status, ops.adapt_datetimefield_value(issued_at)]
    if due_at is not None:
        sets += ", due_at = %s"
        params_head.append(ops.adapt_datetimefield_value(due_at))
    po_numbers: dict[int, str] = {}
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
                f"UPDATE {table} SET {sets} FROM v WHERE {table}.id = v.id "
                f"RETURNING {table}.id, {table}.po_number",
                [*params, *params_head],  # in text order: the VALUES, then the SET
            )
            po_numbers.update(cursor.fetchall())
    documents: Sequence[Invoice | CreditNote] = rows
    for doc, number in zip(documents, numbers, strict=True):
        doc.status = status
        doc.number = number
        doc.issued_at = issued_at
        doc.po_number = po_numbers[doc.pk]
        if isinstance(doc, Invoice):
            doc.due_at = due_at


def _write_credits(
    plans: Sequence[CreditPlan],
    *,
    now: dt.datetime,
    run: BillingRun | None,
    actor: User | None = None,
) -> list[CreditNote]:
    if not plans:
        return []
    # Lock order: the invoices credited (ascending id) before the credit-note series; the
    # notes then pay down those invoices' balances (billing/payments.py).
    payments.lock_invoices(p.invoice.pk for p in plans)
    notes = [
        CreditNote(
            tenant_id=p.invoice.tenant_id,
            lease_id=p.invoice.lease_id,
            invoice=p.invoice,
            status=CreditNoteStatus.DRAFT,
            currency=p.invoice.currency,
            total=p.total,
            reason=p.reason,
            kind=p.kind,
            period=p.period,
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
    _announce(DocumentEvent.CREDIT_NOTE_ISSUED, "credit_note", notes)
    ledger.credit_notes_issued(notes)
    payments.apply_credit_notes(notes, now=now)
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
    lines = load_lines(leases)
    # Invoices due are seen from the months taken alone; the billing history is read only
    # when none is, to look for credits.
    data = load_history(leases, lines, slots_only=True)
    if not (
        invoices
        and any(
            has_work(lease, data, now=now, period_cap=period_cap, invoices=True, credits=False)
            for lease in data.leases
        )
    ):
        if not credits:
            return BillOutcome()
        data = load_history(leases, lines)
        if not any(
            has_work(lease, data, now=now, period_cap=period_cap, invoices=False, credits=True)
            for lease in data.leases
        ):
            return BillOutcome()
    outcome = BillOutcome()
    with transaction.atomic():
        data = load_locked(lease_ids, data)
        invoice_plans: list[InvoicePlan] = []
        credit_plans: list[CreditPlan] = []
        # Credit notes first: they are computed against the invoices as they stood.
        for lease in data.leases:
            plan = plan_lease(
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
        # Lock order: the credited invoices before the sources of money that issuing applies
        # (billing/payments.py), then the series rows: invoice, then credit note.
        payments.lock_invoices(p.invoice.pk for p in credit_plans)
        outcome.invoices = _write_invoices(invoice_plans, now=now, run=run, issue=True, actor=actor)
        outcome.credit_notes = _write_credits(credit_plans, now=now, run=run, actor=actor)
        if run is not None and (outcome.invoices or outcome.credit_notes):
            BillingRun.objects.filter(pk=run.pk).update(
                invoices_issued=F("invoices_issued") + len(outcome.invoices),
                credit_notes_issued=F("credit_notes_issued") + len(outcome.credit_notes),
            )
    return outcome


# --- public services ------------------------------------------------------------------------------


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


def lease_rent_due(
    lease: Lease,
    start: dt.datetime,
    end: dt.datetime,
    *,
    line_ends: Mapping[int, dt.datetime] | None = None,
) -> Decimal:
    """Rent of the lease over `[start, end)` by the billing rule, to the cent.

    The rent seam of `leasing.rules.quote` ("rent still due"): `round(C(end)) − round(C(start))`
    with `C` the lease's exact accrual from commencement, its lines cut at `end` — what the
    invoices net of credit notes will say for that span once the lease ends at `end`. Each
    line ends at its own end, or at `line_ends[line id]` when given (the backlog's ends as
    known at a past date).
    """
    if end <= start:
        return ZERO
    lines = list(lease.lines.all())
    ends = {line.pk: line.end if line_ends is None else line_ends[line.pk] for line in lines}

    def accrued(through: dt.datetime) -> Fraction:
        return sum(
            (
                line_accrual(line, lease, min(through, ends[line.pk]), life_end=ends[line.pk])
                for line in lines
            ),
            Fraction(0),
        )

    return proration.to_money(accrued(end)) - proration.to_money(accrued(start))


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
    data = load([lease_id], lock=lock, full_invoices=True)
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
            and holds_slot(i.status, i.void_resolution)
        ),
        None,
    )
    if current is not None and current.status != InvoiceStatus.DRAFT:
        return current
    p_start, p_end = proration.period_bounds(period, locked.contract_timezone)
    plan = InvoicePlan(
        locked,
        InvoiceKind.RENT,
        period,
        p_start,
        p_end,
        rent_lines(locked, lines, period),
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
    lease = lock_row(Lease, lease_id)
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
    locked.po_number = lease.po_number  # frozen as the lease says it now, under its lock
    locked.save(
        update_fields=["total", "status", "number", "issued_at", "due_at", "issued_by", "po_number"]
    )
    _announce(DocumentEvent.INVOICE_ISSUED, "invoice", [locked])
    _receivables_on_issue([locked], now=now)
    locked.refresh_from_db()
    return locked


def check_voidable(invoice: Invoice) -> None:
    """Refuse (a coded `DomainError`) unless `invoice` can be voided as it stands: issued, not
    credited, no money applied, no supplementary invoice holding its slot. `invoice_void` asks
    under its locks; the admin's confirmation asks first, to offer only what would be done."""
    if invoice.status != InvoiceStatus.ISSUED:
        raise InvoiceNotIssued(extra={"invoice": invoice.number, "status": invoice.status})
    if CreditNote.objects.filter(invoice=invoice, status=CreditNoteStatus.ISSUED).exists():
        raise InvoiceHasCreditNotes(extra={"invoice": invoice.number})
    payments.check_voidable(invoice)
    supplements = Invoice.objects.filter(supplements=invoice).filter(HOLDS_SLOT)
    if supplements.exists():
        raise InvoiceHasSupplements(
            extra={
                "invoice": invoice.number,
                "supplements": list(supplements.values_list("number", flat=True)),
            }
        )


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
    check_voidable(locked)
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
    ledger.invoice_voided(locked, at=now)
    _refresh_standing([locked.tenant_id], now=now)
    return locked


@transaction.atomic
def invoice_mark_paid(
    *,
    invoice: Invoice,
    paid_at: dt.datetime | None = None,
    reference: str = "",
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """Pay what is left of one invoice: a payment of its balance (value-dated `paid_at`,
    default now), recorded by `actor` and applied to it (billing/payments.py), so the balance
    and the ledger say what happened. Refused unless the invoice is open."""
    now = _now(now)
    locked = lock_row(Invoice, invoice.pk)
    if locked.status not in OPEN_STATUSES:
        raise InvoiceNotIssued(extra={"invoice": locked.number, "status": locked.status})
    owed = payments.balance(locked)
    if owed > 0:
        payments.payment_record(
            tenant=locked.tenant,
            amount=owed,
            value_date=(paid_at or now).astimezone(dt.UTC).date(),
            reference=reference or f"Paid in full: {locked.number}",
            method=PaymentMethod.OTHER,
            currency=locked.currency,
            invoices=[locked.pk],
            actor=actor,
            now=now,
        )
    locked.refresh_from_db()
    _refresh_standing([locked.tenant_id], now=now)
    return locked


def _refresh_standing(
    tenant_ids: Iterable[int] | None = None, *, now: dt.datetime | None = None
) -> tuple[int, int]:
    """Standing from aging (billing/aging.py): past due, delinquent or current. Returns the
    numbers of tenants moved behind (past due or delinquent) and back to current."""
    past_due, delinquent, current = aging.refresh_standing(tenant_ids, now=_now(now))
    return past_due + delinquent, current


@dataclass(frozen=True)
class OverdueOutcome:
    newly_overdue: int
    tenants_past_due: int
    tenants_current: int


@transaction.atomic
def mark_overdue(*, now: dt.datetime | None = None) -> OverdueOutcome:
    """Flag open invoices past `due_at` as overdue (announcing `invoice.overdue` once each) and
    set every tenant's standing from its aging."""
    now = _now(now)
    candidates = list(
        Invoice.objects.filter(status__in=OPEN_STATUSES, due_at__lt=now, is_overdue=False)
        .order_by("pk")
        .only("pk", "tenant_id", "lease_id", "number", "total")
    )
    # An invoice credited down to nothing owes nothing: never overdue.
    owed = payments.balances(candidates)
    due = [
        (inv.pk, inv.tenant_id, inv.lease_id, inv.number) for inv in candidates if owed[inv.pk] > 0
    ]
    newly = Invoice.objects.filter(pk__in=[row[0] for row in due], is_overdue=False).update(
        is_overdue=True
    )
    events.emit_many(
        events.Event(
            ReceivableEvent.INVOICE_OVERDUE,
            subject="invoice",
            subject_id=pk,
            payload={"tenant": tenant_id, "lease": lease_id, "number": number},
            occurred_at=now,
        )
        for pk, tenant_id, lease_id, number in due
    )
    past_due, current = _refresh_standing(now=now)
    return OverdueOutcome(newly, past_due, current)
