"""Output serializers of invoices and credit notes: money as 2-place strings plus currency."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from billing.choices import (
    CreditNoteKind,
    CreditNoteStatus,
    InvoiceKind,
    InvoiceStatus,
    PaymentMethod,
    StatementKind,
)
from common.api.serializers import StrictInputSerializer
from leasing.api.serializers import BoundedDateField, InstantField, Money, day, instant, money
from leasing.choices import NoticeOutcome


class DocumentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(allow_null=True)


class InvoiceLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lease_line = serializers.IntegerField(source="lease_line_id")
    description = serializers.CharField()
    service_start = InstantField()
    service_end = InstantField()
    days = serializers.IntegerField()
    days_in_month = serializers.IntegerField()
    monthly_rate = Money()
    rate_multiplier = serializers.DecimalField(max_digits=4, decimal_places=2)
    amount = Money()


class InvoiceListSerializer(serializers.ListSerializer):
    """A page of the invoice list from rows of `selectors.INVOICE_ROW_COLUMNS` (dicts, not
    models): each row exactly as `InvoiceSerializer` renders that invoice (tested), built
    directly rather than through DRF's per-field machinery."""

    def to_representation(self, data):
        return [invoice_row(row) for row in data]


def invoice_row(row: dict) -> dict:
    return {
        "id": row["id"],
        "number": row["number"],
        "lease": {"id": row["lease_id"], "number": row["lease__number"]},
        "kind": row["kind"],
        "period": day(row["period"]),
        "period_start": instant(row["period_start"]),
        "period_end": instant(row["period_end"]),
        "status": row["status"],
        "currency": row["currency"],
        "total": money(row["total"]),
        "issued_at": instant(row["issued_at"]),
        "due_at": instant(row["due_at"]),
        "paid_at": instant(row["paid_at"]),
        "is_overdue": row["is_overdue"],
        "balance": money(row["balance"]),
    }


class InvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    lease = DocumentRefSerializer()
    kind = serializers.ChoiceField(choices=InvoiceKind.choices)
    period = serializers.DateField(help_text="First day of the calendar month billed.")
    period_start = InstantField()
    period_end = InstantField()
    status = serializers.ChoiceField(choices=InvoiceStatus.choices)
    currency = serializers.CharField()
    total = Money()
    issued_at = InstantField()
    due_at = InstantField()
    paid_at = InstantField(allow_null=True)
    is_overdue = serializers.BooleanField()
    balance = Money(
        help_text="What is still owed: the total less payments and credit notes applied to it "
        "(0 once paid or void)."
    )

    class Meta:
        list_serializer_class = InvoiceListSerializer


class InvoiceDetailSerializer(InvoiceSerializer):
    class Meta:
        list_serializer_class = serializers.ListSerializer  # the row list is for InvoiceSerializer

    po_number = serializers.CharField(
        help_text="The lease's purchase order number as it stood when this was issued (may be "
        "empty)."
    )
    supplements = DocumentRefSerializer(
        allow_null=True,
        help_text="For a supplementary invoice: the month's rent invoice it adds to (an end "
        "moved later inside an invoiced month, e.g. a withdrawn notice).",
    )

    lines = InvoiceLineSerializer(many=True)


class CreditNoteLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    invoice_line = serializers.IntegerField(source="invoice_line_id")
    lease_line = serializers.IntegerField(source="lease_line_id")
    description = serializers.CharField()
    service_start = InstantField()
    service_end = InstantField()
    days = serializers.IntegerField()
    amount = Money()


class CreditNoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    lease = DocumentRefSerializer()
    invoice = DocumentRefSerializer()
    status = serializers.ChoiceField(choices=CreditNoteStatus.choices)
    kind = serializers.ChoiceField(choices=CreditNoteKind.choices)
    period = serializers.DateField(
        allow_null=True, help_text="A service credit's month (first day); null otherwise."
    )
    currency = serializers.CharField()
    total = Money()
    reason = serializers.CharField()
    issued_at = InstantField()


class CreditNoteDetailSerializer(CreditNoteSerializer):
    po_number = serializers.CharField(
        help_text="The lease's purchase order number as it stood when this was issued (may be "
        "empty)."
    )
    lines = CreditNoteLineSerializer(many=True)
    availability = serializers.SerializerMethodField(
        help_text='A service credit\'s availability report: `{"lines": [...]}` with the '
        "figures of GET /leases/{id}/availability/; null for other kinds."
    )

    def get_availability(self, obj) -> dict | None:
        report = getattr(obj, "availability_report", None)
        return report.report if report is not None else None


class TerminationQuoteQuerySerializer(StrictInputSerializer):
    notice_date = BoundedDateField(help_text="Date the notice would be received (contract zone).")
    requested_end_date = BoundedDateField(required=False)


class TerminationQuoteSerializer(serializers.Serializer):
    lease = serializers.IntegerField()
    notice_date = serializers.DateField(source="quote.notice_date")
    min_end = InstantField(source="quote.min_end")
    effective_end = InstantField(source="quote.effective_end")
    outcome = serializers.ChoiceField(choices=NoticeOutcome.choices, source="quote.outcome")
    holds_until = InstantField(
        source="quote.holds_until", help_text="When the lease stops holding capacity."
    )
    latest_useful_notice_date = serializers.DateField(source="quote.latest_useful_notice_date")
    currency = serializers.CharField()
    rent_due = Money(help_text="Rent over [commencement, holds_until) by the billing rule.")
    rent_invoiced = Money(help_text="Rent invoiced so far, net of credit notes.")
    rent_still_due = Money(help_text="rent_due − rent_invoiced, if positive.")
    credit_due = Money(help_text="rent_invoiced − rent_due, if positive: the credit note.")
    cancels_successor = serializers.IntegerField(
        allow_null=True,
        help_text="Id of the lease's renewal the notice would cancel (it commences after the "
        "effective end), else null.",
    )


class ApplicationSerializer(serializers.Serializer):
    invoice = DocumentRefSerializer()
    amount = Money(help_text="Negative: an earlier application undone (a reversed payment).")
    applied_at = InstantField()


class PaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = Money()
    currency = serializers.CharField()
    value_date = serializers.DateField()
    reference = serializers.CharField()
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    recorded_at = InstantField()
    reversed_at = InstantField(
        allow_null=True, help_text="When it was reversed (recorded by mistake), else null."
    )
    unapplied = Money(help_text="What of it is not applied to an invoice nor refunded.")
    applications = ApplicationSerializer(many=True)

    def to_representation(self, instance):
        reversal = getattr(instance, "reversal", None)
        applications = list(instance.applications.all())
        refunded = sum((r.amount for r in instance.refunds.all()), Decimal(0))
        applied = sum((a.amount for a in applications), Decimal(0))
        held = Decimal(0) if reversal is not None else instance.amount
        return {
            "id": instance.pk,
            "amount": money(instance.amount),
            "currency": instance.currency,
            "value_date": day(instance.value_date),
            "reference": instance.reference,
            "method": instance.method,
            "recorded_at": instant(instance.recorded_at),
            "reversed_at": instant(reversal.reversed_at) if reversal is not None else None,
            "unapplied": money(max(held - applied - refunded, Decimal(0))),
            "applications": [
                {
                    "invoice": {"id": a.invoice_id, "number": a.invoice.number},
                    "amount": money(a.amount),
                    "applied_at": instant(a.applied_at),
                }
                for a in sorted(applications, key=lambda a: (a.applied_at, a.pk))
            ],
        }


class StatementQuerySerializer(StrictInputSerializer):
    as_of = BoundedDateField(
        required=False, help_text="The statement at the end of this UTC day (default today)."
    )


class AgingSerializer(serializers.Serializer):
    current = Money()
    days_1_30 = Money()
    days_31_60 = Money()
    days_61_90 = Money()
    days_over_90 = Money()


class StatementLineSerializer(serializers.Serializer):
    date = InstantField()
    kind = serializers.ChoiceField(choices=StatementKind.choices)
    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="Document number or payment reference.")
    amount = Money(help_text="Signed: what it adds to what you owe (payments are negative).")
    running_balance = Money()


class StatementSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    currency = serializers.CharField()
    balance = Money(help_text="Owed on invoices less unapplied cash and credit.")
    owed = Money(help_text="The sum of the open invoices' balances.")
    aging = AgingSerializer()
    unapplied_cash = Money()
    credit_balance = Money()
    documents = StatementLineSerializer(many=True)
