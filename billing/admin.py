"""Operator admin for billing: documents are made by the services, never edited by hand.

Every field is read-only (amounts, numbers and periods come from the billing rule; issued
documents are immutable in the database too). Actions call the services row by row, as the
logged-in operator (the services record who did it), and report each row's success or refusal.
Voiding asks first for a reason and what follows: re-issue or waiver.
"""

from __future__ import annotations

from decimal import Decimal
from operator import attrgetter
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from common.access import operator_page
from common.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_form_page,
    history_table,
    money_display,
    per_row_action,
    record_change,
    run_per_row,
)
from common.display import instant
from common.exceptions import DomainError
from common.money import format_money
from leasing.choices import Party
from leasing.models import LeaseLine

from . import cancellation, services
from .choices import InvoiceStatus, VoidResolution
from .models import BillingRun, CreditNote, CreditNoteLine, Invoice, InvoiceLine, NumberSeries


class VoidForm(forms.Form):
    """What a void needs: why, and what follows (the next run re-issues, or it is waived)."""

    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    resolution = forms.ChoiceField(choices=VoidResolution.choices, widget=forms.RadioSelect)


class LateDeliveryCancelForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded on the line's cancellation event (the tenant's request, a ticket).",
    )


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("description", "service_start", "service_end", "days", "rate", "line_amount")
    readonly_fields = fields
    rate = money_display("monthly_rate", "monthly rate", currency=attrgetter("invoice.currency"))
    line_amount = money_display("amount", "amount", currency=attrgetter("invoice.currency"))

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("invoice")


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = ("description", "invoice_line", "service_start", "service_end", "days", "line_amount")
    readonly_fields = fields
    line_amount = money_display("amount", "amount", currency=attrgetter("credit_note.currency"))

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("credit_note")


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    # What an operator acts on first: who owes how much, and whether it is late.
    list_display = (
        "display_number",
        "tenant",
        "money",
        "status",
        "due_at",
        "is_overdue",
        "period",
        "kind",
        "lease",
        "supplements",
        "issued_at",
        "print_link",
    )
    list_filter = ("status", "kind", "is_overdue", "period", "tenant")
    search_fields = ("number", "tenant__name", "tenant__slug", "lease__number")
    list_select_related = ("tenant", "lease", "supplements")
    date_hierarchy = "period"
    inlines = (InvoiceLineInline,)
    actions = ("issue_selected", "void_selected", "mark_paid_selected")
    fields = (
        "number",
        "status",
        "tenant",
        "lease",
        "kind",
        "supplements",
        "cause",
        "period",
        "period_start",
        "period_end",
        "currency",
        "money",
        "issued_at",
        "issued_by",
        "due_at",
        "paid_at",
        "paid_by",
        "is_overdue",
        "voided_at",
        "voided_by",
        "void_reason",
        "void_resolution",
        "billing_run",
        "print_link",
        "history",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invoices are drafted by the billing services

    @admin.display(description="history")
    def history(self, obj: Invoice) -> str:
        """The document's life: drafted, issued, credited, paid or voided (issued documents
        change only through these transitions, each stamped with its time)."""
        if not obj.pk:
            return "—"
        money = obj.currency
        return history_table(
            [
                (obj.created_at, "drafted", format_money(obj.total, money)),
                (
                    obj.issued_at,
                    "issued",
                    (f"{obj.number}, due {obj.due_at:%Y-%m-%d}" if obj.due_at else str(obj.number))
                    + _by(obj.issued_by),
                ),
                *(
                    (
                        note.issued_at,
                        "credited",
                        f"{note.number}: {format_money(note.total, money)}",
                    )
                    for note in obj.credit_notes.all()
                ),
                (obj.paid_at, "paid", _by(obj.paid_by)),
                (
                    obj.voided_at,
                    "voided",
                    f"{obj.get_void_resolution_display()}: {obj.void_reason}{_by(obj.voided_by)}",
                ),
            ]
        )

    def has_delete_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        return obj is not None and obj.status == InvoiceStatus.DRAFT

    @admin.display(description="number", ordering="number")
    def display_number(self, obj: Invoice) -> str:
        return obj.number or "(draft)"

    money = money_display("total", "total")

    @admin.display(description="print")
    def print_link(self, obj: Invoice) -> str:
        if not obj.pk:
            return "—"
        return format_html(
            '<a href="{}" target="_blank">print</a>',
            reverse("billing:invoice_print", args=[obj.pk]),
        )

    issue_selected = per_row_action(
        "Issue selected draft invoices (assigns numbers)",
        "Issued",
        lambda i, user: services.invoice_issue(invoice=i, actor=user),
        permissions=["change"],
    )
    mark_paid_selected = per_row_action(
        "Mark selected issued invoices paid",
        "Paid",
        lambda i, user: services.invoice_mark_paid(invoice=i, actor=user),
        permissions=["change"],
    )

    @admin.action(description="Void selected issued invoices…", permissions=["change"])
    def void_selected(self, request: HttpRequest, queryset):
        """Two steps: a confirmation page with each invoice's amount, tenant and what a void
        changes, asking why and what follows (re-issue or waive); then the voids, each as the
        logged-in operator. Invoices the service would refuse are shown with the reason, and
        "Void" is not offered when none can be voided."""
        form = VoidForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            now = timezone.now()
            run_per_row(
                self,
                request,
                queryset,
                "Voided",
                lambda obj: services.invoice_void(
                    invoice=obj,
                    reason=form.cleaned_data["reason"],
                    resolution=form.cleaned_data["resolution"],
                    actor=cast(User, request.user),  # the admin serves signed-in staff only
                    now=now,
                ),
            )
            return None
        rows = list(queryset.select_related("tenant", "lease").order_by("pk"))
        effects = []
        totals: dict[str, Decimal] = {}
        for invoice in rows:
            try:
                services.check_voidable(invoice)
            except DomainError as exc:
                refusal = f"{exc.message} [{exc.code}]"
            else:
                refusal = ""
                totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.total
            effects.append(
                {
                    "invoice": invoice,
                    "amount": format_money(invoice.total, invoice.currency),
                    "due": instant(invoice.due_at),
                    "refusal": refusal,
                }
            )
        return action_form_page(
            self,
            request,
            queryset.select_related("tenant", "lease"),
            action="void_selected",
            title="Void invoices",
            template="admin/billing/invoice/void.html",
            form=form if form.is_bound else VoidForm(),
            effects=effects,
            total=" + ".join(format_money(v, c) for c, v in sorted(totals.items())),
            tenants=sorted({e["invoice"].tenant.name for e in effects if not e["refusal"]}),
            voidable=bool(totals),
        )


def _by(user) -> str:
    return f" (by {user})" if user is not None else ""


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
    list_display = ("number", "tenant", "money", "status", "invoice", "lease", "issued_at")
    list_filter = ("status", "tenant", "invoice__period")
    search_fields = ("number", "invoice__number", "tenant__name", "lease__number")
    list_select_related = ("tenant", "lease", "invoice")
    inlines = (CreditNoteLineInline,)
    fields = (
        "number",
        "status",
        "tenant",
        "lease",
        "invoice",
        "currency",
        "money",
        "reason",
        "issued_at",
        "issued_by",
        "billing_run",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CreditNote | None = None) -> bool:
        return False

    money = money_display("total", "total")

    # --- late-delivery cancellation (docs/rules/fleet.md, "Rent follows accepted nodes") ---

    def get_urls(self):
        # Reached from each line of the lease admin (`leasing.admin.LeaseLineInline`). The
        # page reads the lease and what was invoiced; acting cancels the line (a lease change)
        # and issues credit notes, so it needs both.
        guarded = operator_page(
            "leasing.view_lease",
            "billing.view_creditnote",
            write=("leasing.change_lease", "billing.add_creditnote"),
        )
        return [
            path(
                "cancel-late-delivery/<int:line_id>/",
                self.admin_site.admin_view(guarded(self.cancel_late_delivery_view)),
                name="billing_cancel_late_delivery",
            ),
            *super().get_urls(),
        ]

    def cancel_late_delivery_view(self, request: HttpRequest, line_id: int) -> HttpResponse:
        """GET: the money effect of cancelling the line now (each invoice's credit, who is
        told, the dates); POST: cancel it, as the operator, and credit."""
        line = (
            LeaseLine.objects.select_related("lease__tenant", "cluster").filter(pk=line_id).first()
        )
        if line is None:
            messages.error(request, "No such lease line.")
            return HttpResponseRedirect(reverse("admin:leasing_lease_changelist"))
        lease = line.lease
        lease_page = reverse("admin:leasing_lease_change", args=[lease.pk])
        form = LateDeliveryCancelForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = cancellation.line_cancel_for_late_delivery(
                    lease_id=lease.pk,
                    line_id=line.pk,
                    party=Party.OPERATOR,
                    actor=cast(User, request.user),
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                messages.error(request, f"Not cancelled: {exc.message} ({exc.code})")
                return HttpResponseRedirect(request.path)
            record_change(
                request.user,
                [lease],
                f"Line {line.label} cancelled for late delivery; credited "
                f"{format_money(outcome.total, lease.currency)} "
                f"({', '.join(n.number or '' for n in outcome.notes) or 'nothing invoiced'})",
            )
            messages.success(
                request,
                f"Line {line.label} cancelled; {len(outcome.notes)} credit note(s) issued for "
                f"{format_money(outcome.total, lease.currency)}.",
            )
            return HttpResponseRedirect(lease_page)
        preview = cancellation.cancellation_preview(lease_id=lease.pk, line_id=line.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Cancel line {line.label} for late delivery",
            "opts": self.model._meta,
            "lease": lease,
            "line": line,
            "lease_page": lease_page,
            "preview": preview,
            "refusal": (
                preview.figures.refusal.default_message if preview.figures.refusal else None
            ),
            "rows": [
                (
                    c.invoice,
                    [
                        (cl, cl.invoice_line.amount, cl.invoice_line.amount - cl.amount)
                        for cl in c.lines
                    ],
                    c.total,
                )
                for c in preview.credits
            ],
            "total": format_money(preview.total, lease.currency),
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/cancel_late_delivery.html", context)


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "run_date",
        "period",
        "status",
        "as_of",
        "leases_scanned",
        "invoices_issued",
        "credit_notes_issued",
        "errors",
        "started_at",
        "finished_at",
    )
    list_filter = ("status",)
    date_hierarchy = "run_date"


@admin.register(NumberSeries)
class NumberSeriesAdmin(ReadOnlyAdmin):
    """Gapless: only the issuing transaction moves a series."""

    list_display = ("kind", "year", "last_value")


# Receivables (payments, applications, refunds, the ledger) live in their own module.
from . import admin_receivables  # noqa: E402, F401
