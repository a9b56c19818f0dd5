"""Payments and cash application (docs/rules/receivables.md).

A payment records the tenant, amount, currency, value date, reference, method and who recorded
it. Its money is applied to invoices — the ones named, in the order named, or else the
tenant's open invoices due earliest first — each up to its balance; what is left is the
tenant's unapplied cash, applied to invoices as they are issued (`apply_on_issue`, called by
every issuing transaction). An issued credit note is applied to the invoice it corrects, up to
that invoice's balance; the rest is the tenant's credit balance, which later invoices consume
the same way. Refunds draw on unapplied money. Nothing is deleted: a payment recorded by
mistake is reversed (`payment_reverse`), with who and why, and its applications are undone by
negative applications.

An invoice's balance is always computed: its total less the sum of its applications
(`balances`). Its status follows the money received: PARTIALLY_PAID while payments cover part
of the balance, PAID once they bring it to 0 (`paid_at` when they did), ISSUED while no
payment was applied (a credit note alone lowers the balance but pays nothing) — and back again
when a payment is reversed.

Concurrency (docs/architecture.md, "Lock order"): a transaction locks the invoices it applies
to (ascending id) before the sources it draws from (payments and credit notes, ascending id),
and re-reads balances and unapplied amounts under those locks. Two operators paying the same
invoice at once therefore serialize on the invoice row, and the second sees what the first
applied: an invoice is never over-applied, a payment never spent twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, cast

from django.db import connection, transaction
from django.db.models import Sum

from common import events
from common.clock import resolve_now
from common.exceptions import Conflict, DomainError, InvalidInput
from common.money import DEFAULT_CURRENCY, ZERO, round_money
from leasing.models import Lease, Tenant

from . import aging, ledger
from .choices import (
    BILLED_STATUSES,
    OPEN_STATUSES,
    CreditNoteStatus,
    InvoiceStatus,
    LedgerAccount,
    PaymentMethod,
    PostingKind,
    ReceivableEvent,
)
from .models import Application, CreditNote, Invoice, Payment, PaymentReversal, Refund

if TYPE_CHECKING:
    from django.contrib.auth.models import User

A = LedgerAccount


class InvoiceNotOpen(Conflict):
    code = "invoice_not_open"
    default_message = "Only an issued, unpaid or partly paid invoice of this tenant can be paid."


class PaymentReversed(Conflict):
    code = "payment_reversed"
    default_message = "This payment was reversed."


class PaymentRefunded(Conflict):
    code = "payment_refunded"
    default_message = "Part of this payment was refunded; it cannot be reversed."


class NothingUnapplied(Conflict):
    code = "nothing_unapplied"
    default_message = "The tenant has not that much unapplied money."


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"
    http_status = 422
    default_message = "The tenant is not billed in this currency."


class OverApplication(DomainError):
    code = "over_application"
    http_status = 422
    default_message = "The applications ask for more than the payment holds or an invoice owes."


class InvoiceHasPayments(Conflict):
    code = "invoice_has_payments"
    default_message = "Money was applied to this invoice; reverse the payments before voiding."


# --- reads ---------------------------------------------------------------------------------------


def applied_totals(invoice_ids: Iterable[int], *, before: dt.datetime | None = None):
    """Sum of the applications of each invoice (up to `before` if given)."""
    qs = Application.objects.filter(invoice_id__in=list(invoice_ids))
    if before is not None:
        qs = qs.filter(applied_at__lt=before)
    return dict(qs.values_list("invoice_id").annotate(total=Sum("amount")).order_by())


def balances(invoices: Iterable[Invoice]) -> dict[int, Decimal]:
    """Each invoice's balance now: its total less what was applied to it."""
    invoices = list(invoices)
    applied = applied_totals(inv.pk for inv in invoices)
    return {inv.pk: inv.total - applied.get(inv.pk, ZERO) for inv in invoices}


def balance(invoice: Invoice) -> Decimal:
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
        return ZERO
    return balances([invoice])[invoice.pk]


@dataclass(frozen=True)
class Source:
    """Money that can be applied: a payment or an issued credit note, and what it still holds."""

    payment_id: int | None
    credit_note_id: int | None
    available: Decimal
    at: dt.datetime
    currency: str = "USD"


def sources(tenant_id: int, *, ids: Sequence[tuple[str, int]] | None = None) -> list[Source]:
    """The tenant's sources with money left, oldest first (payments before credit notes at the
    same instant)."""
    payments = Payment.objects.filter(tenant_id=tenant_id, reversal__isnull=True)
    notes = CreditNote.objects.filter(tenant_id=tenant_id, status=CreditNoteStatus.ISSUED)
    p_applied = _sums(Application, "payment_id", tenant_id)
    p_refunded = _sums(Refund, "payment_id", tenant_id)
    n_applied = _sums(Application, "credit_note_id", tenant_id)
    n_refunded = _sums(Refund, "credit_note_id", tenant_id)
    found = []
    for pk, amount, at, cur in payments.values_list("pk", "amount", "recorded_at", "currency"):
        left = amount - p_applied.get(pk, ZERO) - p_refunded.get(pk, ZERO)
        if left > 0:
            found.append(Source(pk, None, left, at, cur))
    for pk, amount, issued_at, cur in notes.values_list("pk", "total", "issued_at", "currency"):
        left = amount - n_applied.get(pk, ZERO) - n_refunded.get(pk, ZERO)
        if left > 0:
            found.append(Source(None, pk, left, cast(dt.datetime, issued_at), cur))
    found.sort(key=lambda s: (s.at, s.credit_note_id is not None, s.payment_id or s.credit_note_id))
    return found


def _sums(model, column: str, tenant_id: int) -> dict[int, Decimal]:
    return dict(
        model.objects.filter(tenant_id=tenant_id, **{f"{column}__isnull": False})
        .values_list(column)
        .annotate(total=Sum("amount"))
        .order_by()
    )


def unapplied(tenant: Tenant) -> tuple[Decimal, Decimal]:
    """(unapplied cash, credit balance) of a tenant now."""
    found = sources(tenant.pk)
    cash = sum((s.available for s in found if s.payment_id), ZERO)
    credit = sum((s.available for s in found if s.credit_note_id), ZERO)
    return cash, credit


# --- locks ---------------------------------------------------------------------------------------


def lock_invoices(ids: Iterable[int]) -> None:
    """Lock invoices in ascending id, before any source (the receivables lock order)."""
    _lock(Invoice, ids)


def _lock(model, ids: Iterable[int]) -> None:
    """Row locks in ascending id (SQLite: a no-op write takes the database's write lock)."""
    ids = sorted(set(ids))
    if not ids:
        return
    if connection.vendor == "sqlite":
        Tenant.objects.filter(pk=-1).update(name="")  # any write takes the single write lock
        return
    list(model.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))


def _lock_sources(found: Iterable[Source]) -> None:
    found = list(found)
    _lock(Payment, (s.payment_id for s in found if s.payment_id))
    _lock(CreditNote, (s.credit_note_id for s in found if s.credit_note_id))


# --- applying -----------------------------------------------------------------------------------


def _apply(
    source: Source,
    targets: Sequence[Invoice],
    open_balance: dict[int, Decimal],
    *,
    now: dt.datetime,
    actor: User | None,
    tenant_id: int,
    caps: dict[int, Decimal] | None = None,
) -> tuple[list[Application], Decimal]:
    """Apply what `source` holds to `targets` in order, each up to its balance (updated in
    `open_balance`) and to its amount in `caps` if given; returns the applications and what
    is left."""
    left = source.available
    made = []
    for invoice in targets:
        if left <= 0:
            break
        if invoice.currency != source.currency:
            continue  # money applies only to invoices in its currency
        take = min(left, open_balance[invoice.pk])
        if caps is not None:
            take = min(take, caps[invoice.pk])
        if take <= 0:
            continue
        made.append(
            Application(
                tenant_id=tenant_id,
                invoice_id=invoice.pk,
                payment_id=source.payment_id,
                credit_note_id=source.credit_note_id,
                amount=take,
                applied_at=now,
                applied_by=actor,
            )
        )
        open_balance[invoice.pk] -= take
        left -= take
    return made, left


def _write_applications(
    made: Sequence[Application], *, now: dt.datetime, currency: dict[int, str]
) -> None:
    """Insert applications with their postings (customer credit / AR; reversed when negative)
    and announce each `payment.applied`."""
    if not made:
        return
    Application.objects.bulk_create(made)
    ledger.post(
        ledger.posting(
            PostingKind.APPLICATION if app.amount > 0 else PostingKind.UNAPPLICATION,
            A.CUSTOMER_CREDIT,
            A.AR,
            app.amount,
            at=now,
            tenant_id=app.tenant_id,
            currency=currency[app.invoice_id],
            invoice_id=app.invoice_id,
            credit_note_id=app.credit_note_id,
            payment_id=app.payment_id,
        )
        for app in made
    )
    events.emit_many(
        events.Event(
            ReceivableEvent.PAYMENT_APPLIED,
            subject="payment",
            subject_id=app.payment_id,
            payload={
                "tenant": app.tenant_id,
                "invoice": app.invoice_id,
                "amount": str(app.amount),
                "application": app.pk,
            },
            occurred_at=now,
        )
        for app in made
        if app.payment_id is not None and app.amount > 0
    )


def _settle_statuses(invoice_ids: Iterable[int], *, now: dt.datetime, actor: User | None) -> None:
    """Move each invoice to the status its balance says (the invoices are locked)."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return
    invoices = list(Invoice.objects.filter(pk__in=ids))
    owed = balances(invoices)
    cash = dict(
        Application.objects.filter(invoice_id__in=ids, payment__isnull=False)
        .values_list("invoice_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    paid_now = []
    for inv in invoices:
        left = owed[inv.pk]
        if inv.status not in (*OPEN_STATUSES, InvoiceStatus.PAID):
            continue
        # Paid means money was received for it: a credit note alone lowers the balance of an
        # invoice that stays ISSUED (a wholly credited invoice owes 0 and is never overdue).
        if cash.get(inv.pk, ZERO) <= 0:
            status = InvoiceStatus.ISSUED
        elif left <= 0:
            status = InvoiceStatus.PAID
        else:
            status = InvoiceStatus.PARTIALLY_PAID
        if status == inv.status:
            continue
        if status == InvoiceStatus.PAID:
            Invoice.objects.filter(pk=inv.pk).update(
                status=status, paid_at=now, paid_by=actor, is_overdue=False
            )
            paid_now.append(inv)
        else:
            Invoice.objects.filter(pk=inv.pk).update(status=status, paid_at=None, paid_by=None)
    events.emit_many(
        events.Event(
            ReceivableEvent.INVOICE_PAID,
            subject="invoice",
            subject_id=inv.pk,
            payload={"tenant": inv.tenant_id, "lease": inv.lease_id, "number": inv.number},
            occurred_at=now,
        )
        for inv in paid_now
    )


def _check_amount(value, field: str = "amount") -> Decimal:
    try:
        if isinstance(value, float):
            raise InvalidOperation
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput(extra={"fields": {field: "Must be a decimal amount."}}) from None
    if not amount.is_finite() or amount <= 0 or round_money(amount) != amount:
        raise InvalidInput(extra={"fields": {field: "Must be positive, to the cent."}})
    return amount


def _open_invoices(tenant_id: int, currency: str, ids: Sequence[int] | None) -> list[Invoice]:
    """The invoices to apply to, in order: those named (refused unless open, the tenant's and
    in `currency`), or every open invoice of the tenant in `currency`, due earliest first."""
    qs = Invoice.objects.filter(tenant_id=tenant_id)
    if ids is None:
        return list(qs.filter(currency=currency, status__in=OPEN_STATUSES).order_by("due_at", "pk"))
    # A named invoice paid meanwhile (by a concurrent payment) is not an error: what it no
    # longer needs stays unapplied. Drafts, voids and other tenants' invoices are refused.
    found = {inv.pk: inv for inv in qs.filter(pk__in=list(ids), status__in=BILLED_STATUSES)}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise InvoiceNotOpen(extra={"invoices": missing})
    other = [pk for pk in ids if found[pk].currency != currency]
    if other:
        raise CurrencyMismatch(
            "Money applies only to invoices in its currency.",
            extra={"invoices": other, "currency": currency},
        )
    return [found[pk] for pk in dict.fromkeys(ids)]


def _check_currency(tenant: Tenant, currency: str) -> None:
    """Refuse a currency the tenant is not billed in (its leases' currencies)."""
    billed = set(Lease.objects.filter(tenant=tenant).values_list("currency", flat=True))
    billed = billed or {DEFAULT_CURRENCY}
    if currency not in billed:
        raise CurrencyMismatch(extra={"currency": currency, "billed_in": sorted(billed)})


def _check_applications(
    applications: Sequence[tuple[int, Decimal | str]], amount: Decimal
) -> dict[int, Decimal]:
    """The amount asked for each invoice (ids once each, amounts positive to the cent, no more
    in all than the payment)."""
    caps: dict[int, Decimal] = {}
    for i, (invoice_id, value) in enumerate(applications):
        if invoice_id in caps:
            raise InvalidInput(
                extra={"fields": {f"applications[{i}].invoice": "Named more than once."}}
            )
        caps[invoice_id] = _check_amount(value, f"applications[{i}].amount")
    asked = sum(caps.values(), ZERO)
    if asked > amount:
        raise OverApplication(
            "The applications add up to more than the payment.",
            extra={"amount": str(amount), "applied": str(asked)},
        )
    return caps


@dataclass(frozen=True)
class PlannedApplication:
    """One invoice a payment would pay: its balance before, the amount applied, and after."""

    invoice: Invoice
    balance: Decimal
    amount: Decimal

    @property
    def balance_after(self) -> Decimal:
        return self.balance - self.amount


@dataclass(frozen=True)
class PaymentPlan:
    """Where a payment's money goes: the applications in order, and what stays unapplied."""

    applications: list[PlannedApplication]
    unapplied: Decimal
    made: list[Application]  # the same applications as unsaved rows, for `payment_record`
    last_payment: int | None = None  # the tenant's latest payment when planned

    def fingerprint(self) -> str:
        """What the plan does and the tenant's latest payment, in a form an operator's
        confirmation can be checked against: if it differs when the payment is recorded, what
        was confirmed is stale (a payment recorded meanwhile, or this one submitted twice)."""
        parts = [f"{a.invoice.pk}:{a.balance}:{a.amount}" for a in self.applications]
        return ";".join([*parts, f"left:{self.unapplied}", f"after:{self.last_payment}"])


def _plan(
    targets: Sequence[Invoice],
    source: Source,
    *,
    now: dt.datetime,
    actor: User | None,
    tenant_id: int,
    caps: dict[int, Decimal] | None = None,
    open_balance: dict[int, Decimal] | None = None,
) -> PaymentPlan:
    """Apply `source` to `targets` on paper (the rule of `_apply`, amounts capped by `caps`,
    from `open_balance` if already read): nothing is written."""
    open_balance = balances(targets) if open_balance is None else dict(open_balance)
    before = dict(open_balance)
    made, left = _apply(
        source, targets, open_balance, now=now, actor=actor, tenant_id=tenant_id, caps=caps
    )
    by_pk = {inv.pk: inv for inv in targets}
    planned = [
        PlannedApplication(by_pk[a.invoice_id], before[a.invoice_id], a.amount) for a in made
    ]
    return PaymentPlan(planned, left, made)


def payment_plan(
    *,
    tenant: Tenant,
    amount: Decimal | str,
    currency: str = "USD",
    invoices: Sequence[int] | None = None,
    now: dt.datetime | None = None,
) -> PaymentPlan:
    """What `payment_record` would apply now, without writing anything (the confirmation page's
    dry run): the same targets, balances and application rule."""
    now = resolve_now(now)
    amount = _check_amount(amount)
    _check_currency(tenant, currency)
    targets = [
        inv for inv in _open_invoices(tenant.pk, currency, invoices) if inv.status in OPEN_STATUSES
    ]
    source = Source(None, None, amount, now, currency)
    plan = _plan(targets, source, now=now, actor=None, tenant_id=tenant.pk)
    last = Payment.objects.filter(tenant=tenant).order_by("-pk").values_list("pk", flat=True)
    return replace(plan, last_payment=last.first())


@transaction.atomic
def payment_record(
    *,
    tenant: Tenant,
    amount: Decimal | str,
    value_date: dt.date,
    reference: str,
    method: str = PaymentMethod.WIRE,
    currency: str = "USD",
    invoices: Sequence[int] | None = None,
    applications: Sequence[tuple[int, Decimal | str]] | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Payment:
    """Record a payment by `actor` and apply it: to the invoices named (ids, in that order),
    or the amounts named for each invoice (`applications`, (id, amount) pairs: each no more
    than the invoice owes, all no more than the payment, else `over_application` and nothing
    is written), or else to the tenant's open invoices due earliest first. What is left stays
    unapplied. The currency must be one the tenant is billed in."""
    now = resolve_now(now)
    amount = _check_amount(amount)
    if invoices is not None and applications is not None:
        raise InvalidInput(
            extra={"fields": {"applications": "Name invoices or applications, not both."}}
        )
    reference = (reference or "").strip()
    errors = {}
    if not reference:
        errors["reference"] = "A payment needs its bank reference."
    if method not in PaymentMethod.values:
        errors["method"] = f"Must be one of {sorted(PaymentMethod.values)}."
    if not isinstance(value_date, dt.date) or isinstance(value_date, dt.datetime):
        errors["value_date"] = "Must be a date."
    elif value_date > ledger.day_of(now):
        errors["value_date"] = "Must not be in the future."
    if errors:
        raise InvalidInput(extra={"fields": errors})
    caps = None
    if applications is not None:
        caps = _check_applications(applications, amount)
        invoices = list(caps)
    _check_currency(tenant, currency)
    targets = _open_invoices(tenant.pk, currency, invoices)
    _lock(Invoice, (inv.pk for inv in targets))
    # Re-read under the locks: a concurrent payment may have settled some meanwhile; the money
    # then stays unapplied rather than being refused (it was received all the same) — unless
    # an amount was asked for an invoice that no longer owes it.
    still_open = set(
        Invoice.objects.filter(
            pk__in=[inv.pk for inv in targets], status__in=OPEN_STATUSES
        ).values_list("pk", flat=True)
    )
    targets = [inv for inv in targets if inv.pk in still_open]
    open_balance = balances(targets)
    if caps is not None:
        over = {
            pk: str(open_balance.get(pk, ZERO))
            for pk, asked in caps.items()
            if asked > open_balance.get(pk, ZERO)
        }
        if over:
            raise OverApplication(
                "An application is more than its invoice owes.",
                extra={"balances": over},
            )
    payment = Payment.objects.create(
        tenant=tenant,
        amount=amount,
        currency=currency,
        value_date=value_date,
        reference=reference[:200],
        method=method,
        recorded_at=now,
        recorded_by=actor,
    )
    ledger.post([ledger.cash_postings(PostingKind.PAYMENT, amount, payment=payment, at=now)])
    source = Source(payment.pk, None, amount, now, currency)
    made = _plan(
        targets,
        source,
        now=now,
        actor=actor,
        tenant_id=tenant.pk,
        caps=caps,
        open_balance=open_balance,
    ).made
    _write_applications(made, now=now, currency={inv.pk: inv.currency for inv in targets})
    _settle_statuses((app.invoice_id for app in made), now=now, actor=actor)
    aging.refresh_standing([tenant.pk], now=now)  # tenant rows after invoice rows
    return payment


@transaction.atomic
def unapplied_apply(
    *,
    tenant: Tenant,
    invoices: Sequence[int] | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> list[Application]:
    """Apply the tenant's unapplied cash and credit (oldest first) to the invoices named, or to
    its open invoices due earliest first."""
    now = resolve_now(now)
    if invoices is None:
        targets = list(
            Invoice.objects.filter(tenant=tenant, status__in=OPEN_STATUSES).order_by("due_at", "pk")
        )
    else:
        currencies = set(
            Invoice.objects.filter(pk__in=list(invoices)).values_list("currency", flat=True)
        )
        targets = _open_invoices(tenant.pk, next(iter(currencies), "USD"), invoices)
    _lock(Invoice, (inv.pk for inv in targets))
    found = sources(tenant.pk)
    _lock_sources(found)
    found = sources(tenant.pk)
    made = _apply_sources(found, targets, now=now, actor=actor, tenant_id=tenant.pk)
    aging.refresh_standing([tenant.pk], now=now)
    return made


def _apply_sources(
    found: Sequence[Source],
    targets: Sequence[Invoice],
    *,
    now: dt.datetime,
    actor: User | None,
    tenant_id: int,
) -> list[Application]:
    open_balance = balances(targets)
    made: list[Application] = []
    for source in found:
        apps, _ = _apply(source, targets, open_balance, now=now, actor=actor, tenant_id=tenant_id)
        made.extend(apps)
    _write_applications(made, now=now, currency={inv.pk: inv.currency for inv in targets})
    _settle_statuses((app.invoice_id for app in made), now=now, actor=actor)
    return made


def apply_on_issue(invoices: Sequence[Invoice], *, now: dt.datetime) -> list[Application]:
    """Inside an issuing transaction: apply each tenant's unapplied cash and credit to its newly
    issued invoices (due earliest first). One query when no tenant has unapplied money."""
    by_tenant: dict[int, list[Invoice]] = defaultdict(list)
    for inv in invoices:
        if inv.total > 0:
            by_tenant[inv.tenant_id].append(inv)
    if not by_tenant:
        return []
    funded = _tenants_with_money(by_tenant)
    made = []
    for tenant_id in sorted(funded):
        found = sources(tenant_id)
        _lock_sources(found)
        found = sources(tenant_id)  # under the locks
        targets = sorted(by_tenant[tenant_id], key=lambda i: (i.due_at, i.pk))
        made += _apply_sources(found, targets, now=now, actor=None, tenant_id=tenant_id)
    return made


MONEY_LEFT_SQL = """
SELECT tenant_id FROM (
  SELECT tenant_id, amount FROM billing_payment p WHERE tenant_id IN ({ids})
    AND NOT EXISTS (SELECT 1 FROM billing_paymentreversal r WHERE r.payment_id = p.id)
  UNION ALL SELECT tenant_id, total FROM billing_creditnote
    WHERE tenant_id IN ({ids}) AND status = 'issued'
  UNION ALL SELECT tenant_id, -amount FROM billing_application WHERE tenant_id IN ({ids})
  UNION ALL SELECT tenant_id, -amount FROM billing_refund WHERE tenant_id IN ({ids})
) m GROUP BY tenant_id HAVING SUM(amount) > 0
"""


def _tenants_with_money(tenant_ids: Iterable[int]) -> set[int]:
    """Tenants among these holding unapplied money (one query; `sources` has the detail)."""
    ids = ", ".join(str(int(t)) for t in tenant_ids)
    with connection.cursor() as cursor:
        cursor.execute(MONEY_LEFT_SQL.format(ids=ids))  # nosec B608: integers only
        return {row[0] for row in cursor.fetchall()}


def apply_credit_notes(notes: Sequence[CreditNote], *, now: dt.datetime) -> list[Application]:
    """Inside the transaction issuing credit notes: each note pays down the invoice it corrects,
    up to that invoice's balance; the excess stays with the tenant as credit."""
    if not notes:
        return []
    invoice_ids = sorted({note.invoice_id for note in notes})
    _lock(Invoice, invoice_ids)
    targets = {inv.pk: inv for inv in Invoice.objects.filter(pk__in=invoice_ids)}
    open_balance = {
        pk: (owed if targets[pk].status in OPEN_STATUSES else ZERO)
        for pk, owed in balances(targets.values()).items()
    }
    made = []
    for note in notes:
        source = Source(None, note.pk, note.total, now, note.currency)
        apps, _ = _apply(
            source,
            [targets[note.invoice_id]],
            open_balance,
            now=now,
            actor=None,
            tenant_id=note.tenant_id,
        )
        made += apps
    _write_applications(made, now=now, currency={pk: inv.currency for pk, inv in targets.items()})
    _settle_statuses((app.invoice_id for app in made), now=now, actor=None)
    if made:
        aging.refresh_standing({app.tenant_id for app in made}, now=now)
    return made


# --- undoing -------------------------------------------------------------------------------------


@transaction.atomic
def payment_reverse(
    *,
    payment: Payment,
    reason: str,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> PaymentReversal:
    """Undo a payment recorded by mistake: negative applications take its money back from the
    invoices it paid (which reopen), the ledger reverses it, and the reversal records who and
    why. Refused once reversed, or after part of it was refunded."""
    now = resolve_now(now)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(extra={"fields": {"reason": "A reversal needs a reason."}})
    invoice_ids = set(
        Application.objects.filter(payment=payment).values_list("invoice_id", flat=True)
    )
    _lock(Invoice, invoice_ids)
    _lock(Payment, [payment.pk])
    payment = Payment.objects.get(pk=payment.pk)
    if PaymentReversal.objects.filter(payment=payment).exists():
        raise PaymentReversed(extra={"payment": payment.pk})
    if Refund.objects.filter(payment=payment).exists():
        raise PaymentRefunded(extra={"payment": payment.pk})
    net = {
        pk: total
        for pk, total in Application.objects.filter(payment=payment)
        .values_list("invoice_id")
        .annotate(total=Sum("amount"))
        .order_by()
        if total
    }
    undo = [
        Application(
            tenant_id=payment.tenant_id,
            invoice_id=pk,
            payment=payment,
            amount=-total,
            applied_at=now,
            applied_by=actor,
        )
        for pk, total in sorted(net.items())
    ]
    currency = dict(Invoice.objects.filter(pk__in=list(net)).values_list("pk", "currency"))
    _write_applications(undo, now=now, currency=currency)
    reversal = PaymentReversal.objects.create(
        payment=payment, reason=reason[:500], reversed_at=now, reversed_by=actor
    )
    ledger.post(
        [ledger.cash_postings(PostingKind.REVERSAL, -payment.amount, payment=payment, at=now)]
    )
    _settle_statuses(net, now=now, actor=actor)
    aging.refresh_standing([payment.tenant_id], now=now)
    return reversal


@transaction.atomic
def refund_record(
    *,
    tenant: Tenant,
    amount: Decimal | str,
    reference: str,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> list[Refund]:
    """Give back unapplied money (cash first, then credit; oldest first), recorded by `actor`."""
    now = resolve_now(now)
    amount = _check_amount(amount)
    reference = (reference or "").strip()
    if not reference:
        raise InvalidInput(extra={"fields": {"reference": "A refund needs its reference."}})
    found = sources(tenant.pk)
    _lock_sources(found)
    found = sorted(sources(tenant.pk), key=lambda s: s.credit_note_id is not None)
    if sum((s.available for s in found), ZERO) < amount:
        raise NothingUnapplied(extra={"amount": str(amount)})
    left = amount
    rows = []
    currency: dict[int, str] = {}
    for source in found:
        take = min(left, source.available)
        if take <= 0:
            break
        rows.append(
            Refund(
                tenant=tenant,
                payment_id=source.payment_id,
                credit_note_id=source.credit_note_id,
                amount=take,
                reference=reference[:200],
                refunded_at=now,
                refunded_by=actor,
            )
        )
        currency[len(rows) - 1] = source.currency
        left -= take
    Refund.objects.bulk_create(rows)
    ledger.post(
        ledger.posting(
            PostingKind.REFUND,
            A.CUSTOMER_CREDIT,
            A.CASH,
            row.amount,
            at=now,
            tenant_id=tenant.pk,
            currency=currency[i],
            payment_id=row.payment_id,
            credit_note_id=row.credit_note_id,
        )
        for i, row in enumerate(rows)
    )
    return rows


def check_voidable(invoice: Invoice) -> None:
    """Refuse to void an invoice that money was applied to (net of reversals)."""
    net = Application.objects.filter(invoice=invoice).aggregate(s=Sum("amount"))["s"] or ZERO
    if net:
        raise InvoiceHasPayments(extra={"invoice": invoice.number, "applied": str(net)})
