"""Input and output of the operator payments API. Amounts are decimal strings (never JSON
numbers: no float touches money); the services (`billing.payments`) check them."""

from __future__ import annotations

from rest_framework import serializers

from billing.api.serializers import PaymentSerializer
from billing.choices import PaymentMethod
from common.api.fields import StrictCharField, StrictDateField
from common.api.serializers import StrictInputSerializer
from leasing.api.serializers import InstantField, Money, instant, money

AMOUNT_HELP = 'A decimal string, positive, to the cent (`"400000.00"`).'
MAX_APPLICATIONS = 1000


class Amount(StrictCharField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("help_text", AMOUNT_HELP)
        super().__init__(**kwargs)


class ApplicationInputSerializer(StrictInputSerializer):
    invoice = StrictCharField(max_length=32, help_text="The invoice's number.")
    amount = Amount()


class PaymentInputSerializer(StrictInputSerializer):
    """A payment received: applied to the `applications` given (each up to what its invoice
    owes, all up to the payment), or else to the tenant's open invoices due earliest first;
    what is left stays unapplied and pays invoices as they are issued."""

    tenant = StrictCharField(max_length=100, help_text="The tenant's slug.")
    amount = Amount()
    currency = StrictCharField(
        min_length=3, max_length=3, help_text="ISO 4217, one the tenant is billed in."
    )
    value_date = StrictDateField(help_text="The date the bank credited the money (not future).")
    reference = StrictCharField(max_length=200, help_text="The bank's or the tenant's reference.")
    method = serializers.ChoiceField(choices=PaymentMethod.choices, default=PaymentMethod.WIRE)
    applications = ApplicationInputSerializer(many=True, required=False, allow_empty=False)

    def validate_applications(self, value: list) -> list:
        if len(value) > MAX_APPLICATIONS:
            raise serializers.ValidationError(f"At most {MAX_APPLICATIONS} applications.")
        return value


class ReverseInputSerializer(StrictInputSerializer):
    reason = StrictCharField(max_length=500, help_text="Why it is reversed (required).")


class RefundInputSerializer(StrictInputSerializer):
    """Unapplied money given back to the tenant: its unapplied cash first, then its credit,
    oldest first."""

    tenant = StrictCharField(max_length=100, help_text="The tenant's slug.")
    amount = Amount()
    reference = StrictCharField(max_length=200)


class ReversalSerializer(serializers.Serializer):
    reason = serializers.CharField()
    reversed_at = InstantField()
    reversed_by = serializers.CharField(allow_null=True, help_text="Username.")


class OperatorPaymentSerializer(PaymentSerializer):
    """The tenant API's payment, with the tenant and who recorded and reversed it."""

    tenant = serializers.CharField(help_text="The tenant's slug.")
    recorded_by = serializers.CharField(allow_null=True, help_text="Username.")
    reversal = ReversalSerializer(allow_null=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        reversal = getattr(instance, "reversal", None)
        data["tenant"] = instance.tenant.slug
        data["recorded_by"] = _username(instance.recorded_by)
        data["reversal"] = (
            None
            if reversal is None
            else {
                "reason": reversal.reason,
                "reversed_at": instant(reversal.reversed_at),
                "reversed_by": _username(reversal.reversed_by),
            }
        )
        return data


class RefundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tenant = serializers.CharField()
    payment = serializers.IntegerField(allow_null=True)
    credit_note = serializers.IntegerField(allow_null=True)
    amount = Money()
    reference = serializers.CharField()
    refunded_at = InstantField()
    refunded_by = serializers.CharField(allow_null=True)

    def to_representation(self, instance):
        return {
            "id": instance.pk,
            "tenant": instance.tenant.slug,
            "payment": instance.payment_id,
            "credit_note": instance.credit_note_id,
            "amount": money(instance.amount),
            "reference": instance.reference,
            "refunded_at": instant(instance.refunded_at),
            "refunded_by": _username(instance.refunded_by),
        }


def _username(user) -> str | None:
    return None if user is None else user.get_username()
