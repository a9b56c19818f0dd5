"""Hand-over progress per lease line: how many of its nodes passed acceptance, failed it or
wait, batch by batch (docs/rules/fleet.md, "Delivery and acceptance").

Lines of leases that hold capacity, incomplete ones first; 50 lines a page, each page costing
the same few queries (`leasing.acceptance.handover_progress`).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from common.access import operator_page
from common.pages import render_operator
from leasing.acceptance import handover_progress
from leasing.choices import HOLDING, LineStatus
from leasing.models import LeaseLine

PAGE_SIZE = 50


@operator_page("leasing.view_lease", "leasing.view_acceptancerecord")
def handover(request: HttpRequest) -> HttpResponse:
    lease_number = request.GET.get("lease", "").strip()[:32]
    lines = LeaseLine.objects.filter(status=LineStatus.OPEN, lease__status__in=HOLDING)
    if lease_number:
        lines = lines.filter(lease__number__icontains=lease_number)
    # Incomplete lines first: those with an allocation not yet accepted.
    lines = lines.annotate(
        waiting=Count(
            "allocations",
            filter=Q(allocations__accepted_at__isnull=True, allocations__replaced_by__isnull=True),
        )
    ).order_by("-waiting", "lease__number", "id")
    page = Paginator(lines.values_list("pk", flat=True), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    ids = list(page.object_list)
    by_id = {p.line_id: p for p in handover_progress(lines=LeaseLine.objects.filter(pk__in=ids))}
    rows = [by_id[pk] for pk in ids if pk in by_id]
    context = {
        "title": "Hand-over progress",
        "now": timezone.now(),
        "rows": rows,
        "page": page,
        "lease_number": lease_number,
        "records_url": reverse("admin:leasing_acceptancerecord_changelist"),
    }
    return render_operator(request, "operator/fleet/handover.html", context)
