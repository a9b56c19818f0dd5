"""Operator pages for billing: the printable invoice and the revenue page (finance, viewer)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from common import plots
from common.access import operator_page
from common.money import format_money
from common.pages import render_operator

from . import payments, selectors
from .models import Invoice


@operator_page("billing.view_invoice")
def invoice_print(request: HttpRequest, pk: int) -> HttpResponse:
    """An invoice as a standalone page that prints cleanly to PDF from a browser."""
    try:
        invoice = selectors.invoice_for_print(pk)
    except Invoice.DoesNotExist as exc:
        raise Http404("No such invoice") from exc
    credits = list(invoice.credit_notes.all())
    credited = sum((note.total for note in credits), Decimal("0.00"))
    paid = invoice.total - credited - payments.balance(invoice)
    return render(
        request,
        "billing/invoice_print.html",
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "credits": credits,
            "total": format_money(invoice.total, invoice.currency),
            "credited": format_money(credited, invoice.currency),
            "paid": format_money(paid, invoice.currency),
            "has_paid": paid > 0,
            "balance": format_money(payments.balance(invoice), invoice.currency),
            "has_credits": bool(credits),
            "issuer": settings.BILLING_ISSUER,
        },
    )


def _chart_svg(summary: selectors.RevenueSummary) -> str:
    """Billed vs accrued per month as an inline SVG in the house style (follows dark mode)."""
    labels = [m.strftime("%b %Y") for m in summary.months]
    billed = [float(summary.billed.get(m, 0)) for m in summary.months]
    accrued = [float(summary.accrued.get(m, 0)) for m in summary.months]
    positions = range(len(labels))
    width = 0.4
    with plots.figure(10, 3.2) as fig:
        ax = fig.add_subplot()
        ax.bar([p - width / 2 for p in positions], billed, width, label="billed")
        ax.bar([p + width / 2 for p in positions], accrued, width, label="accrued")
        ax.set_xticks(list(positions), labels)
        plots.money_ticks(ax.yaxis)
        ax.legend()
        return plots.to_svg(fig, title="Billed and accrued revenue per month")


@operator_page("billing.view_invoice")
def revenue(request: HttpRequest) -> HttpResponse:
    """Billed and accrued revenue per month and per tenant, and the monthly run-rate."""
    summary = selectors.revenue_summary()
    months = [
        {
            "month": month,
            "billed": format_money(summary.billed.get(month, Decimal(0))),
            "accrued": format_money(summary.accrued.get(month, Decimal(0))),
        }
        for month in summary.months
    ]
    rows = [
        {
            "tenant": row["tenant"],
            "cells": [(format_money(b), format_money(a)) for b, a in row["cells"]],
            "billed_total": format_money(row["billed_total"]),
            "accrued_total": format_money(row["accrued_total"]),
            "run_rate": format_money(row["run_rate"]),
        }
        for row in summary.tenant_rows()
    ]
    return render_operator(
        request,
        "billing/revenue.html",
        {
            "title": "Revenue",
            "summary": summary,
            "months": months,
            "rows": rows,
            "run_rate": format_money(summary.run_rate),
            # The SVG is produced by matplotlib from numbers only: no user text inside.
            "chart": mark_safe(_chart_svg(summary)),  # nosec
        },
    )
