"""Operator admin for billing: documents are made by the services, never edited by hand.

Every field is read-only (amounts, numbers and periods come from the billing rule; issued
documents are immutable in the database too). Actions call the services row by row and report
each row's success or refusal.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from common.admin import history_table, per_row_action
from common.money import format_money

from . import services
from .choices import InvoiceStatus
from .models import BillingRun, CreditNote, CreditNoteLine, Invoice, InvoiceLine, NumberSeries


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("description", "service_start", "service_end", "days", "monthly_rate", "amount")
    readonly_fields = fields


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = ("description", "invoice_line", "service_start", "service_end", "days", "amount")
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = (
        "display_number",
        "tenant",
        "lease",
        "kind",
        "period",
        "status",
        "money",
        "issued_at",
        "due_at",
        "is_overdue",
        "print_link",
    )
    list_filter = ("status", "kind", "is_overdue", "period", "tenant")
    search_fields = ("number", "tenant__name", "tenant__slug", "lease__number")
    list_select_related = ("tenant", "lease")
    date_hierarchy = "period"
    inlines = (InvoiceLineInline,)
    actions = ("issue_selected", "void_selected", "mark_paid_selected")
    fields = (
        "number",
        "status",
        "tenant",
        "lease",
        "kind",
        "period",
        "period_start",
        "period_end",
        "currency",
        "total",
        "issued_at",
        "due_at",
        "paid_at",
        "is_overdue",
        "voided_at",
        "void_reason",
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
                    f"{obj.number}, due {obj.due_at:%Y-%m-%d}" if obj.due_at else str(obj.number),
                ),
                *(
                    (
                        note.issued_at,
                        "credited",
                        f"{note.number}: {format_money(note.total, money)}",
                    )
                    for note in obj.credit_notes.all()
                ),
                (obj.paid_at, "paid", ""),
                (obj.voided_at, "voided", obj.void_reason),
            ]
        )

    def has_delete_permission(self, request: HttpRequest, obj: Invoice | None = None) -> bool:
        return obj is not None and obj.status == InvoiceStatus.DRAFT

    @admin.display(description="number", ordering="number")
    def display_number(self, obj: Invoice) -> str:
        return obj.number or "(draft)"

    @admin.display(description="total", ordering="total")
    def money(self, obj: Invoice) -> str:
        return format_money(obj.total, obj.currency)

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
        lambda i, _user: services.invoice_issue(invoice=i),
        permissions=["change"],
    )
    void_selected = per_row_action(
        "Void selected issued invoices",
        "Voided",
        lambda i, user: services.invoice_void(invoice=i, reason=f"voided by {user}"),
        permissions=["change"],
    )
    mark_paid_selected = per_row_action(
        "Mark selected issued invoices paid",
        "Paid",
        lambda i, _user: services.invoice_mark_paid(invoice=i),
        permissions=["change"],
    )


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
    list_display = ("number", "tenant", "lease", "invoice", "status", "money", "issued_at")
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
        "total",
        "reason",
        "issued_at",
        "billing_run",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CreditNote | None = None) -> bool:
        return False

    @admin.display(description="total", ordering="total")
    def money(self, obj: CreditNote) -> str:
        return format_money(obj.total, obj.currency)


@admin.register(BillingRun)
class BillingRunAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(NumberSeries)
class NumberSeriesAdmin(admin.ModelAdmin):
    list_display = ("kind", "year", "last_value")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # gapless: only the issuing transaction moves a series

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
