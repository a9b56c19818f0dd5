"""Late-delivery cancellation: the line is cancelled and everything invoiced for it credited
(docs/rules/fleet.md, "Rent follows accepted nodes"; the rule itself is leasing's,
`leasing.late_delivery`).

`line_cancel_for_late_delivery` does both in one transaction, in the lock order of
docs/architecture.md: the lease row (taken by leasing, which re-reads the line and refuses a
second or concurrent request with `line_already_cancelled`), then the credited invoices, then
the credit-note series (`services._write_credits`, the one writer of credit notes: its ledger
postings, and the credit applied to each invoice's balance, any excess to the tenant's credit).

What is credited: every issued, partially paid or paid invoice line billed for the lease line
(rent, supplementary and holdover invoices), less everything already credited on it (early
end, delivery, service credits), so the credits on each invoice line end equal to what it
billed, never more. One credit note of kind `cancellation` per invoice. The billing runs then
see these invoice lines as settled (`Loaded.settled`): the line's due is zero and nothing more
is credited or charged for it.

`cancellation_preview` computes the same figures without writing (the operator's confirmation
page). The tenant is told by `line.cancelled_late_delivery` (webhooks), besides the
`credit_note.issued` of each note.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Sum

from common import events
from common.clock import resolve_now
from common.money import ZERO
from leasing import late_delivery
from leasing.exceptions import NotFound
from leasing.models import LeaseLine

from .choices import BILLED_STATUSES, CreditNoteKind, CreditNoteStatus, DocumentEvent
from .models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from .planning import CreditPlan

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass
class InvoiceCredit:
    """What one invoice gets back."""

    invoice: Invoice
    lines: list[CreditNoteLine]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass
class CancellationOutcome:
    line: LeaseLine
    figures: late_delivery.Eligibility
    credits: list[InvoiceCredit] = field(default_factory=list)
    notes: list[CreditNote] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((c.total for c in self.credits), ZERO)


def _reason(line: LeaseLine, figures: late_delivery.Eligibility) -> str:
    return (
        f"Line {line.pk} cancelled for late delivery: {figures.accepted} of {figures.nodes} "
        f"nodes accepted 30 days after commencement; everything invoiced for it is credited"
    )


def line_credits(line: LeaseLine) -> list[InvoiceCredit]:
    """Per invoice, what is still to credit for `line`: each billed invoice line's amount less
    what issued credit notes already credited on it (every kind). Invoices by id."""
    billed = list(
        InvoiceLine.objects.filter(lease_line=line, invoice__status__in=BILLED_STATUSES)
        .select_related("invoice")
        .order_by("invoice_id", "pk")
    )
    credited: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for inv_line_id, amount in (
        CreditNoteLine.objects.filter(
            invoice_line__in=[il.pk for il in billed], credit_note__status=CreditNoteStatus.ISSUED
        )
        .values("invoice_line_id")
        .annotate(total=Sum("amount"))
        .values_list("invoice_line_id", "total")
    ):
        credited[inv_line_id] = amount
    by_invoice: dict[int, InvoiceCredit] = {}
    for il in billed:
        rest = il.amount - credited[il.pk]
        if rest <= 0:
            continue
        entry = by_invoice.setdefault(il.invoice_id, InvoiceCredit(il.invoice, []))
        entry.lines.append(
            CreditNoteLine(
                invoice_line=il,
                lease_line_id=line.pk,
                description=f"Late-delivery cancellation: {il.description}"[:300],
                service_start=il.service_start,
                service_end=il.service_end,
                days=il.days,
                amount=rest,
            )
        )
    return list(by_invoice.values())


def _line_of(lease_id: int, line_id: int) -> LeaseLine:
    line = LeaseLine.objects.select_related("lease").filter(lease_id=lease_id, pk=line_id).first()
    if line is None:
        raise NotFound("No such line on this lease.", extra={"line": line_id})
    return line


def cancellation_preview(
    *, lease_id: int, line_id: int, now: dt.datetime | None = None
) -> CancellationOutcome:
    """What cancelling the line now would do (eligibility and credits); no write."""
    now = resolve_now(now)
    line = _line_of(lease_id, line_id)
    figures = late_delivery.eligibility(line, now=now)
    return CancellationOutcome(line, figures, line_credits(line) if figures.eligible else [])


def line_cancel_for_late_delivery(
    *,
    lease_id: int,
    line_id: int,
    party: str,
    actor: User | None = None,
    now: dt.datetime | None = None,
    reason: str = "",
) -> CancellationOutcome:
    """Cancel the line for late delivery and credit everything invoiced for it, at `now`, in
    one transaction; refused with a coded 409 (nothing written) when the rule does not allow it
    (see `leasing.late_delivery`)."""
    from .services import _write_credits  # the one writer of credit notes

    now = resolve_now(now)
    with transaction.atomic():
        line, figures = late_delivery.line_cancel_late_delivery(
            lease_id=lease_id, line_id=line_id, party=party, actor=actor, now=now, reason=reason
        )
        outcome = CancellationOutcome(line, figures, line_credits(line))
        plans = [
            CreditPlan(
                c.invoice, c.lines, reason=_reason(line, figures), kind=CreditNoteKind.CANCELLATION
            )
            for c in outcome.credits
        ]
        outcome.notes = _write_credits(plans, now=now, run=None, actor=actor)
        events.emit(
            DocumentEvent.LINE_CANCELLED_LATE_DELIVERY,
            subject="lease_line",
            subject_id=line.pk,
            payload=announcement(outcome),
            occurred_at=now,
        )
    return outcome


def announcement(outcome: CancellationOutcome) -> dict[str, Any]:
    """The payload of `line.cancelled_late_delivery` (and the API's answer)."""
    line = outcome.line
    return {
        "tenant": line.lease.tenant_id,
        "lease": line.lease_id,
        "lease_number": line.lease.number,
        **outcome.figures.as_dict(),
        "currency": line.lease.currency,
        "credited": str(outcome.total),
        "credit_notes": [
            {
                "id": note.pk,
                "number": note.number,
                "invoice": note.invoice_id,
                "total": str(note.total),
            }
            for note in outcome.notes
        ],
    }
