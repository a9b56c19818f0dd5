"""Operator admin for receivables: record a payment (the add form calls the service), reverse
one with a reason, read applications, refunds and the ledger. Nothing is edited or deleted.

Permissions: recording needs `billing.add_payment`, reversing `billing.change_payment` (the
`finance` group); the ledger is read-only for everyone.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from common.admin import action_form_page, run_per_row
from common.exceptions import DomainError
from common.money import format_money

from . import payments
from .choices import OPEN_STATUSES
from .models import Application, Contact, Invoice, Payment, Posting, Refund, Reminder


class PaymentForm(forms.ModelForm):
    """What a payment records; `invoices` (optional) are paid in the order chosen, else the
    tenant's open invoices due earliest first."""

    invoices = forms.ModelMultipleChoiceField(
        queryset=Invoice.objects.filter(status__in=OPEN_STATUSES).select_related("tenant"),
        required=False,
        help_text="Leave empty to pay the tenant's open invoices due earliest first.",
    )

    class Meta:
        model = Payment
        fields = ("tenant", "amount", "currency", "value_date", "reference", "method")

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant")
        amount = data.get("amount")
        if amount is not None and amount <= 0:
            self.add_error("amount", "Must be positive.")
        for invoice in data.get("invoices") or []:
            if tenant is not None and invoice.tenant_id != tenant.pk:
                self.add_error("invoices", f"{invoice} is another tenant's invoice.")
        return data


class ReverseForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class ApplicationInline(admin.TabularInline):
    model = Application
    fk_name = "payment"
    extra = 0
    can_delete = False
    fields = ("invoice", "amount", "applied_at", "applied_by")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    form = PaymentForm
    list_display = (
        "reference",
        "tenant",
        "money",
        "value_date",
        "method",
        "recorded_at",
        "recorded_by",
        "unapplied",
        "reversed",
    )
    list_filter = ("method", "tenant")
    search_fields = ("reference", "tenant__name", "tenant__slug")
    list_select_related = ("tenant", "recorded_by", "reversal")
    date_hierarchy = "value_date"
    inlines = (ApplicationInline,)
    actions = ("reverse_selected",)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ()
        return (
            "tenant",
            "amount",
            "currency",
            "value_date",
            "reference",
            "method",
            "recorded_at",
            "recorded_by",
        )

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ("tenant", "amount", "currency", "value_date", "reference", "method", "invoices")
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The change page is read-only; "change" is the reversal's permission.
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Payment, form, change: bool) -> None:
        """Recording goes through the service (as the logged-in operator), never a bare save."""
        if change:
            return
        data = form.cleaned_data
        try:
            created = payments.payment_record(
                tenant=data["tenant"],
                amount=data["amount"],
                currency=data["currency"],
                value_date=data["value_date"],
                reference=data["reference"],
                method=data["method"],
                invoices=[i.pk for i in data["invoices"]] or None,
                actor=cast(User, request.user),
            )
        except DomainError as exc:
            self.message_user(request, f"Refused: {exc.message} [{exc.code}]", messages.ERROR)
            raise
        obj.pk = created.pk
        obj.recorded_at = created.recorded_at

    def save_related(self, request, form, formsets, change) -> None:
        return  # applications are written by the service

    @admin.display(description="amount", ordering="amount")
    def money(self, obj: Payment) -> str:
        return format_money(obj.amount, obj.currency)

    @admin.display(description="unapplied")
    def unapplied(self, obj: Payment) -> str:
        found = [s for s in payments.sources(obj.tenant_id) if s.payment_id == obj.pk]
        return format_money(found[0].available if found else Decimal(0), obj.currency)

    @admin.display(description="reversed", boolean=True)
    def reversed(self, obj: Payment) -> bool:
        return hasattr(obj, "reversal")

    @admin.action(description="Reverse selected payments…", permissions=["change"])
    def reverse_selected(self, request: HttpRequest, queryset):
        form = ReverseForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            now = timezone.now()
            run_per_row(
                self,
                request,
                queryset,
                "Reversed",
                lambda obj: payments.payment_reverse(
                    payment=obj,
                    reason=form.cleaned_data["reason"],
                    actor=cast(User, request.user),
                    now=now,
                ),
            )
            return None
        return action_form_page(
            self,
            request,
            queryset.select_related("tenant"),
            action="reverse_selected",
            title="Reverse payments",
            template="admin/billing/payment/reverse.html",
            form=form if form.is_bound else ReverseForm(),
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ("invoice", "tenant", "payment", "credit_note", "amount", "applied_at")
    list_select_related = ("invoice", "tenant", "payment", "credit_note")
    search_fields = ("invoice__number", "tenant__name", "payment__reference")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("reference", "tenant", "amount", "refunded_at", "refunded_by")
    list_select_related = ("tenant", "refunded_by")


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ("day", "kind", "debit", "credit", "amount", "currency", "tenant", "invoice")
    list_filter = ("kind", "debit", "credit", "day")
    list_select_related = ("tenant", "invoice")
    date_hierarchy = "day"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """The tenants' billing, operations and legal contacts (reminders go to billing)."""

    list_display = ("tenant", "role", "name", "email")
    list_filter = ("role",)
    search_fields = ("tenant__name", "email", "name")


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    """Dunning reminders sent (or skipped after downtime): the 30-day step is the escalation."""

    list_display = ("invoice", "step", "sent", "at", "balance")
    list_filter = ("step", "sent")
    list_select_related = ("invoice",)
