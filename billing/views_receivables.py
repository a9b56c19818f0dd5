"""Operator pages of receivables and the ledger (finance, viewer): aging as of any date, the
month close, the journal as CSV. Read-only; each names its permissions (common/access.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from common.access import operator_page
from common.money import format_money
from common.pages import render_operator
from leasing.models import Tenant

from . import aging, dunning, ledger


def _day(value: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if value else default
    except ValueError:
        return default


@operator_page("billing.view_invoice", "billing.view_payment")
def receivables(request: HttpRequest) -> HttpResponse:
    """Who owes what since when, as of any date (`?as_of=YYYY-MM-DD`, default today), and the
    month close of the last twelve months."""
    today = timezone.now().astimezone(dt.UTC).date()
    as_of = _day(request.GET.get("as_of"), today)
    rows = aging.aging(day=as_of)
    names = dict(Tenant.objects.filter(pk__in=list(rows)).values_list("pk", "name"))
    table = [
        {
            "tenant": names.get(row.tenant_id, row.tenant_id),
            "standing": row.standing,
            "cells": [format_money(row.buckets[b]) for b in aging.BUCKETS],
            "owed": format_money(row.owed),
            "unapplied": format_money(row.unapplied_cash + row.credit_balance),
        }
        for row in sorted(rows.values(), key=lambda r: -r.past_due)
    ]
    totals = aging.totals(rows.values())
    month = as_of.replace(day=1)
    closes = []
    for _ in range(12):
        close = ledger.month_close(month)
        closes.append(
            {
                "month": month,
                "opening": format_money(close.opening_deferred),
                "billed": format_money(close.billed),
                "credited": format_money(close.credited),
                "recognized": format_money(close.recognized),
                "closing": format_money(close.closing_deferred),
                "ties": close.ties,
            }
        )
        month = (month - dt.timedelta(days=1)).replace(day=1)
    escalations = dunning.escalations().order_by("at")
    return render_operator(
        request,
        "billing/receivables.html",
        {
            "title": "Receivables",
            "escalations": escalations,
            "as_of": as_of,
            "buckets": ["Current", "1–30", "31–60", "61–90", "> 90"],
            "rows": table,
            "totals": [format_money(totals[b]) for b in aging.BUCKETS],
            "closes": closes,
        },
    )


@operator_page("billing.view_posting")
def journal_csv(request: HttpRequest) -> HttpResponse:
    """The journal as CSV (`?start=`, `?end=` dates, inclusive): two rows per posting."""
    start = _day(request.GET.get("start"), dt.date.min) if request.GET.get("start") else None
    end = _day(request.GET.get("end"), dt.date.max) if request.GET.get("end") else None
    response = HttpResponse(
        ledger.journal_csv(start=start, end=end), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="journal.csv"'
    return response


def _backlog_chart(months, stated, enforceable) -> str:
    from common import plots

    labels = [m.strftime("%b %y") for m in months]
    with plots.figure(10, 3.4) as fig:
        ax = fig.add_subplot()
        xs = range(len(labels))
        width = 0.4
        ax.bar(
            [x - width / 2 for x in xs],
            [float(stated[m]) for m in months],
            width,
            label="stated",
        )
        ax.bar(
            [x + width / 2 for x in xs],
            [float(enforceable.get(m, 0)) for m in months],
            width,
            label="enforceable",
        )
        ax.set_xticks(list(xs), labels, rotation=45, ha="right")
        ax.set_ylabel("rent under contract")
        plots.money_ticks(ax.yaxis)
        ax.legend()
        return plots.to_svg(fig, title="Backlog by month: stated and enforceable")


@operator_page("billing.view_invoice", "leasing.view_lease")
def backlog_page(request: HttpRequest) -> HttpResponse:
    """Backlog as of a date (`?as_of=`): stated and enforceable by month, per tenant, and the
    calendar of latest useful notice dates."""
    from django.utils.safestring import mark_safe

    from . import backlog

    today = timezone.now().astimezone(dt.UTC).date()
    as_of = _day(request.GET.get("as_of"), today)
    found = backlog.backlog(day=as_of)
    months, stated, enforceable = found.by_month()
    names = dict(Tenant.objects.filter(pk__in=list(found.by_tenant())).values_list("pk", "name"))
    return render_operator(
        request,
        "billing/backlog.html",
        {
            "title": "Backlog",
            "as_of": as_of,
            "stated_total": format_money(found.stated_total),
            "enforceable_total": format_money(found.enforceable_total),
            "months": [
                (m, format_money(stated[m]), format_money(enforceable.get(m, Decimal(0))))
                for m in months
            ],
            "tenants": [
                (names.get(t, t), format_money(s), format_money(e))
                for t, (s, e) in sorted(found.by_tenant().items(), key=lambda i: -i[1][0])
            ],
            "calendar": sorted(
                (
                    (row.latest_useful_notice, row.lease.number, row.lease.tenant.name, row.end)
                    for row in found.leases
                ),
                key=lambda r: (r[0], r[1]),
            ),
            # matplotlib SVG from numbers and month labels only: no user text inside.
            "chart": mark_safe(_backlog_chart(months, stated, enforceable)) if months else "",  # nosec
        },
    )
