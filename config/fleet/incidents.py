"""The incident queue (capacity, viewer): open incidents first, oldest first, each with its
node, cluster, the tenant holding the node and the lease, category and source; filters by
status, category, source, cluster and campus. docs/rules/fleet.md, "Incidents".

Three queries whatever the page: the incidents (with node, cluster, campus), the count for the
paginator, and the holdings of the page's nodes (matched in Python: the holder now for an open
incident, at its opening for a resolved one; by the allocator's rule, holdover included).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.paginator import Paginator
from django.db.models import BooleanField, Case, ExpressionWrapper, IntegerField, Q, Value, When
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from clusters.choices import IncidentCategory, IncidentSource, IncidentStatus
from clusters.models import Cluster, Incident, Site
from common.access import operator_page
from common.pages import render_operator
from leasing.models import Allocation
from leasing.selectors import held_past_end

PAGE_SIZE = 50
FILTERS: dict[str, Any] = {
    "status": IncidentStatus.choices,
    "category": IncidentCategory.choices,
    "source": IncidentSource.choices,
}


def _chosen(request: HttpRequest, name: str, allowed: set[str]) -> str:
    value = request.GET.get(name, "")
    return value if value in allowed else ""


def holders(incidents: list[Incident], *, now: dt.datetime) -> dict[int, dict[str, str]]:
    """Per incident id: the tenant and lease holding its node (now if open, else when it
    opened). One query."""
    if not incidents:
        return {}
    earliest = min(i.opened_at for i in incidents)
    rows = (
        Allocation.objects.filter(node_id__in={i.node_id for i in incidents}, starts_at__lte=now)
        .filter(Q(ends_at__gt=earliest) | held_past_end(now=now))
        .annotate(kept=ExpressionWrapper(held_past_end(now=now), output_field=BooleanField()))
        .values(
            "node_id",
            "starts_at",
            "ends_at",
            "kept",
            "line__lease__number",
            "line__lease__tenant__name",
        )
    )
    by_node: dict[int, list[Any]] = {}
    for row in rows:
        by_node.setdefault(row["node_id"], []).append(row)
    out: dict[int, dict[str, str]] = {}
    for incident in incidents:
        at = now if incident.status == IncidentStatus.OPEN else incident.opened_at
        for row in by_node.get(incident.node_id, []):
            if row["starts_at"] <= at and (at < row["ends_at"] or row["kept"]):
                out[incident.pk] = {
                    "tenant": row["line__lease__tenant__name"],
                    "lease": row["line__lease__number"],
                }
                break
    return out


def _age(incident: Incident, now: dt.datetime) -> str:
    hours = ((incident.resolved_at or now) - incident.opened_at).total_seconds() / 3600
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


@operator_page("clusters.view_incident")
def incident_queue(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    chosen = {
        name: _chosen(request, name, {value for value, _ in choices})
        for name, choices in FILTERS.items()
    }
    clusters = list(Cluster.objects.select_related("site").order_by("site__name", "name"))
    sites = list(Site.objects.order_by("name"))
    cluster = _chosen(request, "cluster", {c.slug for c in clusters})
    site = _chosen(request, "site", {s.slug for s in sites})
    qs = Incident.objects.select_related("node__cluster__site")
    for name, value in chosen.items():
        if value:
            qs = qs.filter(**{name: value})
    if cluster:
        qs = qs.filter(node__cluster__slug=cluster)
    if site:
        qs = qs.filter(node__cluster__site__slug=site)
    open_first = Case(
        When(status=IncidentStatus.OPEN, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    qs = qs.order_by(open_first, "opened_at", "pk")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    incidents = list(page.object_list)
    held = holders(incidents, now=now)
    rows = [
        {
            "incident": i,
            "age": _age(i, now),
            "tenant": held.get(i.pk, {}).get("tenant", ""),
            "lease": held.get(i.pk, {}).get("lease", ""),
        }
        for i in incidents
    ]
    query = {k: v for k, v in {**chosen, "cluster": cluster, "site": site}.items() if v}
    context = {
        "title": "Incident queue",
        "rows": rows,
        "page": page,
        "filters": [
            {"name": name, "choices": choices, "value": chosen[name]}
            for name, choices in FILTERS.items()
        ],
        "clusters": clusters,
        "sites": sites,
        "cluster": cluster,
        "site": site,
        "query": "&".join(f"{k}={v}" for k, v in query.items()),
        "now": now,
        "open_total": Incident.objects.filter(status=IncidentStatus.OPEN).count(),
    }
    return render_operator(request, "operator/fleet/incidents.html", context)
