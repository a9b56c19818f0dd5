"""Capacity timeline per cluster: which tenant holds how many nodes over time (capacity, viewer).

Past 90 days and next 180 by default, one point per day, with notice effective dates and
reclaim windows marked. Holdings come from allocation rows grouped by tenant and period in one
query; the per-day counts are then a numpy pass over those few groups.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from django.db.models import BooleanField, Count, ExpressionWrapper
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from matplotlib.ticker import MaxNLocator

from clusters import selectors
from clusters.models import Cluster
from common.access import operator_page
from common.pages import render_operator
from common.plots import PALETTE, figure, to_svg
from leasing.choices import NoticeStatus
from leasing.models import Allocation, Notice
from leasing.selectors import held_at, held_past_end
from reclaim.models import ReclaimDecision

PAST_DAYS = 90
FUTURE_DAYS = 180


def holdings(
    cluster: Cluster, start: dt.datetime, end: dt.datetime, *, now: dt.datetime
) -> tuple[list[dt.datetime], dict[str, list[int]]]:
    """Days from `start` to `end` (UTC midnights) and, per tenant, nodes held at each day.

    Held by the rule the allocator uses (`leasing.selectors.held_at`), as known at `now`: an
    allocation covering the day, or an ended lease's nodes from its end until their release is
    confirmed (so a holdover shows on every day until then, the days to come included).
    """
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    stamps = np.array([d.timestamp() for d in days])
    groups = (
        Allocation.objects.filter(node__cluster=cluster)
        .filter(held_at(start, through=end, now=now))
        .annotate(kept=ExpressionWrapper(held_past_end(now=now), output_field=BooleanField()))
        .order_by()
        .values("line__lease__tenant__name", "starts_at", "ends_at", "kept")
        .annotate(n=Count("pk"))
    )
    per_tenant: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(days), dtype=np.int64))
    for g in groups:
        running = stamps < g["ends_at"].timestamp()
        held = (stamps >= g["starts_at"].timestamp()) & (running | bool(g["kept"]))
        per_tenant[g["line__lease__tenant__name"]] += held * g["n"]
    return days, {t: counts.tolist() for t, counts in sorted(per_tenant.items())}


def markers(
    cluster: Cluster, start: dt.datetime, end: dt.datetime, *, reclaims: bool = True
) -> list[dict[str, Any]]:
    """Notice effective dates and, with `reclaims`, reclaim windows touching this cluster
    inside the range."""
    out: list[dict[str, Any]] = [
        {
            "when": n.effective_end,
            "kind": "notice effective",
            "label": f"{n.lease.number} ({n.given_by})",
        }
        for n in Notice.objects.filter(
            lease__lines__cluster=cluster,
            status__in=(NoticeStatus.RECORDED, NoticeStatus.EFFECTIVE),
            effective_end__range=(start, end),
        )
        .select_related("lease")
        .distinct()
    ]
    if reclaims:
        out += [
            {"when": d.window_start, "kind": "reclaim from", "label": d.title}
            for d in ReclaimDecision.objects.filter(
                lines__cluster=cluster, window_start__range=(start, end)
            ).distinct()
        ]
    return sorted(out, key=lambda m: m["when"])


def timeline_chart(
    cluster: Cluster,
    days: list[dt.datetime],
    series: dict[str, list[int]],
    marks: list[dict[str, Any]],
    now: dt.datetime,
    total_nodes: int,
) -> str:
    # Datetimes go to matplotlib as they are (its date converter places them and picks the date
    # ticks); its stubs type coordinates as floats, hence the ignores below.
    with figure(9.0, 3.8) as fig:
        ax = fig.add_subplot()
        if series:
            ax.stackplot(days, *series.values(), labels=list(series), colors=PALETTE, alpha=0.85)  # type: ignore[arg-type]
        ax.axhline(
            total_nodes, color=PALETTE[7], linestyle="--", linewidth=1, label="nodes in cluster"
        )
        ax.axvline(now, color=PALETTE[7], linewidth=1)  # type: ignore[arg-type]
        ax.annotate(
            "now", (now, total_nodes), textcoords="offset points", xytext=(3, 4), fontsize=8
        )
        styles = {"notice effective": (PALETTE[3], ":"), "reclaim from": (PALETTE[4], "-.")}
        for kind, (color, style) in styles.items():
            for i, m in enumerate(x for x in marks if x["kind"] == kind):
                ax.axvline(
                    m["when"],
                    color=color,
                    linestyle=style,
                    linewidth=1.5,
                    label=kind if i == 0 else None,
                )
        ax.set_ylim(0, max(total_nodes, 1) * 1.1)
        ax.set_xlim(days[0], days[-1])  # type: ignore[arg-type]
        ax.set_ylabel("nodes held")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("date (UTC)")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return to_svg(fig, title=f"Nodes of {cluster} held per tenant over time")


@operator_page("clusters.view_cluster")
def capacity_index(request: HttpRequest) -> HttpResponse:
    context = {
        "title": "Capacity timelines",
        "clusters": selectors.cluster_list().order_by("site__name", "name"),
    }
    return render_operator(request, "operator/capacity_index.html", context)


@operator_page("clusters.view_cluster", "leasing.view_lease")
def capacity_cluster(request: HttpRequest, slug: str) -> HttpResponse:
    """Who holds the cluster over time; reclaim windows only for who may see decisions."""
    cluster = get_object_or_404(Cluster.objects.select_related("site", "accelerator"), slug=slug)
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - dt.timedelta(days=PAST_DAYS)
    end = today + dt.timedelta(days=FUTURE_DAYS)
    days, series = holdings(cluster, start, end, now=now)
    # The chart's points are UTC midnights; this one is now.
    _, at_now = holdings(cluster, now, now, now=now)
    marks = markers(
        cluster, start, end, reclaims=request.user.has_perm("reclaim.view_reclaimdecision")
    )
    total = cluster.nodes.count()
    context = {
        "title": f"Capacity timeline: {cluster}",
        "cluster": cluster,
        "total_nodes": total,
        "held_now": {t: counts[0] for t, counts in at_now.items() if counts[0]},
        "markers": marks,
        "chart": timeline_chart(cluster, days, series, marks, now, total),
        "past_days": PAST_DAYS,
        "future_days": FUTURE_DAYS,
    }
    return render_operator(request, "operator/capacity_cluster.html", context)
