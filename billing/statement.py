"""A tenant's statement as of the end of a UTC day: what it owes by age, what it holds, and
the running list of its documents and money (read from the records, so a past date gives what
the statement said that day)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.money import ZERO
from leasing.models import Tenant

from .aging import Aging, tenant_aging
from .choices import CreditNoteStatus, InvoiceStatus
from .ledger import day_end
from .models import CreditNote, Invoice, Payment, PaymentReversal, Refund


@dataclass(frozen=True)
class StatementLine:
    date: dt.datetime
    kind: str
    id: int
    reference: str
    amount: Decimal  # what it adds to what the tenant owes
    running_balance: Decimal


@dataclass(frozen=True)
class Statement:
    as_of: dt.date
    currency: str
    aging: Aging
    documents: list[StatementLine]

    @property
    def owed(self) -> Decimal:
        return self.aging.owed

    @property
    def balance(self) -> Decimal:
        return self.aging.owed - self.aging.unapplied_cash - self.aging.credit_balance


def statement(tenant: Tenant, *, day: dt.date) -> Statement:
    cutoff = day_end(day)
    rows: list[tuple[Any, str, int, Any, Decimal]] = []  # (instant, kind, id, label, amount)
    invoices = Invoice.objects.filter(tenant=tenant, issued_at__lt=cutoff).exclude(
        status=InvoiceStatus.DRAFT
    )
    currency = "USD"
    for inv in invoices.values("pk", "number", "total", "issued_at", "voided_at", "currency"):
        currency = inv["currency"]
        rows.append((inv["issued_at"], "invoice", inv["pk"], inv["number"], inv["total"]))
        if inv["voided_at"] is not None and inv["voided_at"] < cutoff:
            rows.append((inv["voided_at"], "void", inv["pk"], inv["number"], -inv["total"]))
    notes = CreditNote.objects.filter(
        tenant=tenant, status=CreditNoteStatus.ISSUED, issued_at__lt=cutoff
    )
    for pk, number, total, at in notes.values_list("pk", "number", "total", "issued_at"):
        rows.append((at, "credit_note", pk, number, -total))
    paid = Payment.objects.filter(tenant=tenant, recorded_at__lt=cutoff)
    for pk, ref, amount, at in paid.values_list("pk", "reference", "amount", "recorded_at"):
        rows.append((at, "payment", pk, ref, -amount))
    reversals = PaymentReversal.objects.filter(payment__tenant=tenant, reversed_at__lt=cutoff)
    for pk, ref, amount, at in reversals.values_list(
        "payment_id", "payment__reference", "payment__amount", "reversed_at"
    ):
        rows.append((at, "reversal", pk, ref, amount))
    refunds = Refund.objects.filter(tenant=tenant, refunded_at__lt=cutoff)
    for pk, ref, amount, at in refunds.values_list("pk", "reference", "amount", "refunded_at"):
        rows.append((at, "refund", pk, ref, amount))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    running = ZERO
    lines = []
    for at, kind, pk, ref, amount in rows:
        running += amount
        lines.append(StatementLine(at, kind, pk, ref or "", amount, running))
    return Statement(day, currency, tenant_aging(tenant, day=day), lines)
