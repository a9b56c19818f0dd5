"""Operator admin for receivables: record a payment (the add form calls the service), reverse
one with a reason, read applications, refunds and the ledger. Nothing is edited or deleted.

Permissions: recording needs `billing.add_payment`, reversing `billing.change_payment` (the
`finance` group); the ledger is read-only for everyone.
"""

from __future__ import annotations

from decimal import Decimal
from operator import attrgetter
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.decorators import method_decorator

from common.access import operator_page
from common.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_form_page,
    money_display,
    run_per_row,
)
from common.display import day
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


class ApplicationInline(ReadOnlyInline):
    model = Application
    fk_name = "payment"
    fields = ("invoice", "applied", "applied_at", "applied_by")
    readonly_fields = fields
    applied = money_display("amount", "amount", currency=attrgetter("invoice.currency"))

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("invoice")


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
            "money",
            "currency",
            "value_date",
            "reference",
            "method",
            "recorded_at",
            "recorded_by",
        )

    def get_inlines(self, request: HttpRequest, obj=None):
        # A payment being recorded has no applications yet: the service writes them.
        return self.inlines if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ("tenant", "amount", "currency", "value_date", "reference", "method", "invoices")
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The change page is read-only; "change" is the reversal's permission.
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    # The stubs type `method_decorator` for HttpResponseBase views.
    @method_decorator(cast(Any, operator_page("billing.add_payment")))
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        """Recording is confirmed first: a valid form shows where the money would go (a dry run
        of the service's own application, `payments.payment_plan`) with the form posted back
        as hidden fields; only a POST with `confirm` and the plan it showed records the
        payment. A plan that changed meanwhile (another payment, an invoice issued, the same
        confirmation sent twice) is shown again."""
        if request.method != "POST":
            return super().add_view(request, form_url, extra_context)
        form = self.get_form(request)(request.POST)
        if not form.is_valid():
            return super().add_view(request, form_url, extra_context)
        data = form.cleaned_data
        try:
            plan = payments.payment_plan(
                tenant=data["tenant"],
                amount=data["amount"],
                currency=data["currency"],
                invoices=[i.pk for i in data["invoices"]] or None,
            )
        except DomainError as exc:
            self.message_user(request, f"Refused: {exc.message} [{exc.code}]", messages.ERROR)
            return super().add_view(request, form_url, extra_context)
        confirmed = request.POST.get("confirm") == "1"
        if confirmed and request.POST.get("plan") == plan.fingerprint():
            return super().add_view(request, form_url, extra_context)
        if confirmed:
            self.message_user(
                request,
                "What this payment would pay changed since it was shown: check it again.",
                messages.WARNING,
            )
        currency = data["currency"]
        return TemplateResponse(
            request,
            "admin/billing/payment/confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": "Record this payment?",
                "opts": self.model._meta,
                "form": form,
                "tenant": data["tenant"],
                "amount": format_money(data["amount"], currency),
                "value_date": day(data["value_date"]),
                "rows": [
                    {
                        "invoice": a.invoice,
                        "due": day(a.invoice.due_at.date()) if a.invoice.due_at else "—",
                        "balance": format_money(a.balance, currency),
                        "applied": format_money(a.amount, currency),
                        "after": format_money(a.balance_after, currency),
                        "paid": a.balance_after == 0,
                    }
                    for a in plan.applications
                ],
                "unapplied": format_money(plan.unapplied, currency),
                "plan": plan.fingerprint(),
                # Posted back as it came.
                "posted": [
                    (key, value)
                    for key in request.POST
                    if key not in ("csrfmiddlewaretoken", "confirm", "plan")
                    for value in request.POST.getlist(key)
                ],
            },
        )

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

    money = money_display("amount", "amount")

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


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ("invoice", "tenant", "applied", "payment", "credit_note", "applied_at")
    list_select_related = ("invoice", "tenant", "payment", "credit_note")
    applied = money_display("amount", "amount", currency=attrgetter("invoice.currency"))
    search_fields = ("invoice__number", "tenant__name", "payment__reference")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("reference", "tenant", "refunded", "refunded_at", "refunded_by")
    list_select_related = ("tenant", "refunded_by", "payment", "credit_note")
    refunded = money_display(
        "amount", "amount", currency=lambda r: (r.payment or r.credit_note).currency
    )


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ("day", "kind", "debit", "credit", "posted", "tenant", "invoice")
    list_filter = ("kind", "debit", "credit", "day")
    list_select_related = ("tenant", "invoice")
    date_hierarchy = "day"
    posted = money_display("amount", "amount")


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """The tenants' billing, operations and legal contacts (reminders go to billing)."""

    list_display = ("tenant", "role", "name", "email")
    list_filter = ("role",)
    search_fields = ("tenant__name", "email", "name")


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    """Dunning reminders sent (or skipped after downtime): the 30-day step is the escalation."""

    list_display = ("invoice", "step", "sent", "at", "owed")
    list_filter = ("step", "sent")
    list_select_related = ("invoice",)
    owed = money_display("balance", "balance then", currency=attrgetter("invoice.currency"))
