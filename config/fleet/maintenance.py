"""The maintenance calendar (capacity, viewer): upcoming and in-progress windows by week.

Each window with its scope in names, kind, whether it counts as planned (announced ≥ 7 days
ahead, docs/rules/fleet.md) or late, the nodes it takes, the tenants holding them during it
(`leasing.maintenance.window_tenants`) and the open deferral requests, linked to the admin
where they are decided. Reads only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Func, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from clusters import fleet
from clusters.choices import MaintenanceKind, MaintenanceStatus
from clusters.models import MaintenanceWindow, Node
from common.access import operator_page
from common.pages import render_operator
from leasing.choices import DeferralStatus
from leasing.maintenance import window_tenants
from leasing.models import MaintenanceDeferral

LIMIT = 300
SHOWN_HOSTNAMES = 3


def _count(nodes: QuerySet[Node]) -> Coalesce:
    """The number of `nodes` (filtered on an outer reference) as a scalar subquery."""
    # COUNT as a plain function, not an aggregate: no GROUP BY, one row per outer window.
    counted = nodes.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@dataclass
class Week:
    label: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def _admin_url(name: str, *args: object) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def scope_names(window: Any) -> str:
    """The scope as an operator reads it: the campus, the cluster, or the first hostnames."""
    if window.site is not None:
        return f"{window.site.name} (whole campus)"
    if window.cluster is not None:
        return f"Cluster {window.cluster.name} ({window.cluster.site.name})"
    names = [n.hostname for n in window.nodes.all()]
    shown = ", ".join(sorted(names)[:SHOWN_HOSTNAMES])
    more = len(names) - SHOWN_HOSTNAMES
    return f"{shown} and {more:,} more" if more > 0 else shown


def notice_label(window: MaintenanceWindow) -> str:
    if window.kind == MaintenanceKind.EMERGENCY:
        return "emergency"
    if fleet.counts_as_planned(window):
        return "planned"
    ahead = window.starts_at - window.announced_at
    return f"late (announced {ahead.days} d {ahead.seconds // 3600} h ahead)"


def calendar(now: dt.datetime) -> tuple[list[dict[str, Any]], list[Week]]:
    """In-progress windows, then the scheduled ones grouped by ISO week of their start."""
    windows = (
        MaintenanceWindow.objects.filter(
            status__in=(MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS)
        )
        .select_related("site", "cluster__site")
        .prefetch_related(
            "nodes",
            Prefetch(
                "deferrals",
                queryset=MaintenanceDeferral.objects.filter(
                    status=DeferralStatus.REQUESTED
                ).select_related("tenant"),
                to_attr="open_deferrals",
            ),
        )
        .annotate(
            # Counted per window by subqueries (an index scan each), not by joining every node
            # of every campus and cluster with a window before grouping.
            cluster_nodes=_count(Node.objects.filter(cluster_id=OuterRef("cluster_id"))),
            site_nodes=_count(Node.objects.filter(cluster__site_id=OuterRef("site_id"))),
        )
        .order_by("starts_at", "pk")[:LIMIT]
    )
    running: list[dict[str, Any]] = []
    weeks: dict[tuple[int, int], Week] = {}
    for window in windows:
        row = _row(window, now)
        if window.status == MaintenanceStatus.IN_PROGRESS:
            running.append(row)
            continue
        year, week, _ = window.starts_at.isocalendar()
        monday = (window.starts_at - dt.timedelta(days=window.starts_at.weekday())).date()
        weeks.setdefault(
            (year, week), Week(f"Week {week} of {year} (from Monday {monday:%Y-%m-%d})")
        ).rows.append(row)
    return running, [weeks[k] for k in sorted(weeks)]


def _row(window: Any, now: dt.datetime) -> dict[str, Any]:
    if window.site_id is not None:
        nodes = window.site_nodes
    elif window.cluster_id is not None:
        nodes = window.cluster_nodes
    else:
        nodes = len(window.nodes.all())
    tenants = list(window_tenants(window, now=now).order_by("name").values_list("name", flat=True))
    return {
        "window": window,
        "scope": scope_names(window),
        "notice": notice_label(window),
        "nodes": nodes,
        "tenants": tenants,
        "deferrals": [
            {
                "tenant": d.tenant.name,
                "requested_start": d.requested_start,
                "url": _admin_url("admin:leasing_maintenancedeferral_change", d.pk),
            }
            for d in window.open_deferrals
        ],
        "url": _admin_url("admin:clusters_maintenancewindow_change", window.pk),
    }


@operator_page("clusters.view_maintenancewindow", "leasing.view_lease")
def maintenance_calendar(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    running, weeks = calendar(now)
    context = {
        "title": "Maintenance calendar",
        "now": now,
        "running": running,
        "weeks": weeks,
        "open_requests": MaintenanceDeferral.objects.filter(
            Q(status=DeferralStatus.REQUESTED)
        ).count(),
        "deferrals_url": _admin_url("admin:leasing_maintenancedeferral_changelist"),
        "add_url": _admin_url("admin:clusters_maintenancewindow_add"),
    }
    return render_operator(request, "operator/fleet/maintenance.html", context)
