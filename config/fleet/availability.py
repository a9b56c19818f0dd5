"""Operator pages: service credits issued and the availability behind them (finance, viewer).

`availability_index` lists the settled months (one availability report per lease and month),
newest first, with the service credit each issued; `availability_report` shows one report
printable: every line's minutes, availability, tier, month rent and credit, the incidents (with
the compute a synchronous job would lose) and the windows behind them. Reads only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from billing.models import AvailabilityReport
from common.access import operator_page
from common.money import format_money
from common.pages import render_operator

PAGE = 200


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@operator_page("billing.view_creditnote")
def availability_index(request: HttpRequest) -> HttpResponse:
    reports = AvailabilityReport.objects.select_related("lease", "tenant", "credit_note").order_by(
        "-period", "lease__number"
    )[:PAGE]
    rows = [
        {
            "report": r,
            "credit": format_money(r.credit, r.currency),
            "availability": (
                f"{(1 - Decimal(r.downtime_us) / Decimal(r.in_service_us)) * 100:.4f} %"
                if r.in_service_us
                else "—"
            ),
            "incidents": sum(len(line.get("incidents", [])) for line in r.report["lines"]),
        }
        for r in reports
    ]
    context = {
        "title": "Availability and service credits",
        "rows": rows,
        "page": PAGE,
    }
    return render_operator(request, "operator/fleet/availability_index.html", context)


@operator_page("billing.view_creditnote")
def availability_report(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(
        AvailabilityReport.objects.select_related("lease", "tenant", "credit_note"), pk=pk
    )
    lines = []
    for line in report.report["lines"]:
        lines.append(
            {
                **line,
                "month_rent_text": format_money(Decimal(line["month_rent"]), report.currency),
                "credit_text": format_money(Decimal(line["credit"]), report.currency),
                "incidents": [
                    {**i, "opened": _parse(i["opened_at"]), "resolved": _parse(i["resolved_at"])}
                    for i in line["incidents"]
                ],
                "windows": [
                    {**w, "starts": _parse(w["starts_at"]), "ends": _parse(w["ends_at"])}
                    for w in line["windows"]
                ],
            }
        )
    context = {
        "title": f"Availability of {report.lease.number}, {report.period:%B %Y}",
        "report": report,
        "lines": lines,
        "credit": format_money(report.credit, report.currency),
        "zone": report.lease.contract_timezone,
    }
    return render_operator(request, "operator/fleet/availability_report.html", context)
