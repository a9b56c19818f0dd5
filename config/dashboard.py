"""The operator dashboard: the fleet and the money at a glance (capacity, viewer).

This module composes reads from every app (it sits above them, like the URLconf), draws the
charts server-side, and renders `templates/operator/dashboard.html`. It writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from clusters import perfmodel
from clusters.choices import NodeStatus
from clusters.models import Cluster, Node, SiteLink
from clusters.services import scenario_document
from common import svg
from common.access import operator_page
from common.memo import by_content
from common.money import format_money
from common.pages import render_operator
from leasing.choices import NoticeStatus
from leasing.models import Allocation, Lease, Notice
from leasing.selectors import HOLDING, held_node_ids, leased_gpus_by_cluster, lines_running_at
from reclaim.choices import ReclaimStatus
from reclaim.models import ReclaimDecision

from .inbox import admin_url, change_url, inbox

OFF = (NodeStatus.DOWN, NodeStatus.MAINTENANCE)
STATES = ("leased", "reserved", "free", "down")
STATE_LABELS = {
    "leased": "leased now",
    "reserved": "reserved (lease starts later)",
    "free": "not leased (internal or free)",
    "down": "down / maintenance",
}


@dataclass
class CapacityRow:
    site: str
    accelerator: str
    gpus: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    nodes_url: str = ""  # the node list of this campus and model, where nodes are acted on

    @property
    def total(self) -> int:
        return sum(self.gpus.values())


def node_states(now: dt.datetime) -> QuerySet[Node]:
    """Every node annotated with its `state` at `now` (one of `STATES`).

    leased: held at `now` by the rule the allocator uses (`leasing.selectors.held_at`: an
    allocation covering `now`, or an ended lease's nodes until their release is confirmed,
    holdover included); reserved: not held now but allocated to a lease that starts later;
    down: down or in maintenance and neither; free: the rest.
    """
    held = held_node_ids(now=now)
    later = Allocation.objects.filter(starts_at__gt=now).values("node_id")
    return Node.objects.annotate(
        state=Case(
            When(pk__in=held, then=Value("leased")),
            When(pk__in=later, then=Value("reserved")),
            When(status__in=OFF, then=Value("down")),
            default=Value("free"),
        )
    )


def capacity(now: dt.datetime) -> list[CapacityRow]:
    """GPUs per (campus, model) by state at `now`; each node counts in exactly one state
    (`node_states`). Two queries whatever the fleet size."""
    # `state` is annotated by node_states: the stubs do not see it through the return type.
    per_cluster = (
        node_states(now).order_by().values("cluster", "state").annotate(n=Count("pk"))  # type: ignore[misc]
    )
    clusters = Cluster.objects.select_related("site", "accelerator").in_bulk()
    rows: dict[tuple[str, str], CapacityRow] = {}
    for r in per_cluster:
        cluster = clusters[r["cluster"]]
        key = (cluster.site.name, cluster.accelerator.name)
        nodes = admin_url(
            "clusters_node_changelist",
            f"cluster__site__id__exact={cluster.site_id}"
            f"&cluster__accelerator__id__exact={cluster.accelerator_id}",
        )
        row = rows.setdefault(key, CapacityRow(*key, nodes_url=nodes))
        row.gpus[r["state"]] += r["n"] * cluster.gpus_per_node
    return sorted(rows.values(), key=lambda r: (r.site, r.accelerator))


def run_rate_by_tenant(now: dt.datetime) -> list[dict[str, Any]]:
    """Monthly rent of the lines running at `now`, per tenant, largest first.

    Money is summed in Python: SQLite would sum decimals as floats.
    """
    totals: dict[str, dict[str, Any]] = {}
    rows = lines_running_at(now).values_list(
        "lease__tenant__name", "lease__tenant_id", "lease_id", "monthly_rate", "node_count"
    )
    for tenant, tenant_id, lease_id, rate, nodes in rows:
        row = totals.setdefault(
            tenant,
            {
                "tenant": tenant,
                "url": admin_url("leasing_lease_changelist", f"tenant__id__exact={tenant_id}"),
                "monthly_rate": Decimal(0),
                "nodes": 0,
                "leases": set(),
            },
        )
        row["monthly_rate"] += rate
        row["nodes"] += nodes
        row["leases"].add(lease_id)
    out = sorted(totals.values(), key=lambda r: r["monthly_rate"], reverse=True)
    for row in out:
        row["leases"] = len(row["leases"])
        row["monthly_rate_display"] = format_money(row["monthly_rate"])
    return out


@dataclass(frozen=True)
class Milestone:
    when: dt.datetime
    kind: str  # "term end" | "notice effective" | "renewal starts" | "commencement"
    lease: str
    tenant: str
    detail: str = ""
    lease_url: str = ""  # the lease's admin page, where notices and renewals are acted on


def milestones(now: dt.datetime, days: int = 180) -> list[Milestone]:
    """Term ends, notice effective dates, commencements and renewals in the next `days`."""
    horizon = now + dt.timedelta(days=days)
    out: list[Milestone] = []
    holding = Lease.objects.filter(status__in=HOLDING).select_related("tenant", "predecessor")
    for lease in holding.filter(
        Q(term_end__range=(now, horizon)) | Q(commencement__range=(now, horizon))
    ):
        url = change_url(lease)
        if now <= lease.term_end <= horizon and lease.effective_end is None:
            out.append(
                Milestone(lease.term_end, "term end", lease.number, lease.tenant.name, "", url)
            )
        if now <= lease.commencement <= horizon:
            kind = "renewal starts" if lease.predecessor_id else "commencement"
            out.append(
                Milestone(lease.commencement, kind, lease.number, lease.tenant.name, "", url)
            )
    for notice in Notice.objects.filter(
        status=NoticeStatus.RECORDED, effective_end__range=(now, horizon)
    ).select_related("lease__tenant"):
        out.append(
            Milestone(
                notice.effective_end,
                "notice effective",
                notice.lease.number,
                notice.lease.tenant.name,
                f"by {notice.given_by}",
                change_url(notice.lease),
            )
        )
    return sorted(out, key=lambda m: (m.when, m.lease))


def cross_campus(now: dt.datetime) -> dict[str, object]:
    """Why training across the campuses is poor: the links, and the model's assessment of the
    whole fleet (synchronous across every campus versus its best placement), with its reasons.
    """
    links = list(SiteLink.objects.select_related("site_a", "site_b"))
    clusters = list(Cluster.objects.all())
    if not clusters:
        return {"links": links, "assessment": None}
    leased, rent = leased_gpus_by_cluster(clusters, now=now)
    document = scenario_document(
        leased_gpus=leased, economics={"rent_per_month_usd": float(rent)}, name="whole fleet"
    )
    if not document["pools"]:  # inventory being entered, or every node down: nothing to train on
        return {"links": links, "assessment": None}
    # A pure function of the document (and the model): computed once per inventory state.
    assessment = by_content(
        f"dashboard-assessment:{perfmodel.MODEL_VERSION}", document, lambda: _placements(document)
    )
    placements = {p["key"]: p for p in assessment["placements"]}
    best = placements[assessment["best_placement"]]
    return {
        "links": links,
        "assessment": assessment,
        "all_sync": placements["all"],
        "best": best,
        "ratio": best["effective_pflops"] / max(placements["all"]["effective_pflops"], 1e-9),
    }


def _placements(document: dict[str, Any]) -> dict[str, Any]:
    """What the dashboard shows of the model's assessment: the placements, the best one and
    the explanation (no searched break-evens: the reclaim workbench has those)."""
    assessment = perfmodel.assess(perfmodel.Scenario.from_dict(document), searches=False)
    full = assessment.to_dict()
    return {k: full[k] for k in ("placements", "best_placement", "explanation")}


def open_decisions() -> list[ReclaimDecision]:
    """Reclaim decisions still to act on, newest first."""
    return list(
        ReclaimDecision.objects.filter(
            status__in=(ReclaimStatus.DRAFT, ReclaimStatus.SCORED, ReclaimStatus.APPROVED)
        ).order_by("-created_at")[:10]
    )


def capacity_chart(rows: list[CapacityRow]) -> str:
    """Stacked horizontal bars: GPUs per campus and model, by state (drawn once per set of
    figures)."""
    inputs = [(r.site, r.accelerator, r.gpus) for r in rows]
    return by_content("dashboard-capacity-chart", inputs, lambda: _draw_capacity(rows))


def _draw_capacity(rows: list[CapacityRow]) -> str:
    colors = {
        "leased": svg.PALETTE[0],
        "reserved": svg.PALETTE[4],
        "free": svg.PALETTE[2],
        "down": svg.PALETTE[3],
    }
    labels = [f"{r.site} · {r.accelerator}" for r in rows]
    left = max((svg.text_width(label) for label in labels), default=0) + 14
    plot_w, pitch, bar, top = 560.0, 30.0, 20.0, 6.0
    plot_h = pitch * max(len(rows), 1)
    ticks = svg.count_ticks(max((r.total for r in rows), default=0), plot_w)
    scale = plot_w / ticks[-1]
    d = svg.Drawing(left + plot_w + 30)
    bottom = top + plot_h
    for tick in ticks:
        x = left + tick * scale
        d.line(x, top, x, bottom, stroke_opacity=0.15)
        d.line(x, bottom, x, bottom + 5)
        d.text(x, bottom + 14, f"{tick:,}", text_anchor="middle", font_size=svg.SMALL)
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        middle = top + pitch * (i + 0.5)
        d.text(left - 8, middle, label, text_anchor="end")
        x = left
        for state in STATES:
            if gpus := row.gpus[state]:
                tip = f"{label}: {gpus:,} GPUs {STATE_LABELS[state]}"
                d.element(
                    "rect", tip=tip, x=x, y=middle - bar / 2, width=gpus * scale, height=bar,
                    fill=colors[state],
                )  # fmt: skip
                x += gpus * scale
    d.line(left, top, left, bottom)
    d.line(left, bottom, left + plot_w, bottom)
    d.text(left + plot_w / 2, bottom + 34, "GPUs", text_anchor="middle")
    legend = [(STATE_LABELS[s], "bar", colors[s]) for s in STATES]
    height = bottom + 50 + d.legend(legend, left, bottom + 50, plot_w + 20)
    return d.render(height, title="GPUs by campus, model and state")


def timeline_chart(items: list[Milestone], now: dt.datetime, days: int = 180) -> str:
    """Upcoming milestones on a time axis, one row per lease. The axis starts at the start of
    today (UTC) and today is shaded: a day is what a 180-day axis shows, so the chart is drawn
    once per day and set of milestones, not on every visit."""
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    inputs = [today, days, [(m.when, m.kind, m.lease, m.tenant) for m in items]]
    return by_content(
        "dashboard-timeline-chart", inputs, lambda: _draw_timeline(items, today, days)
    )


def _draw_timeline(items: list[Milestone], today: dt.datetime, days: int) -> str:
    leases = sorted({f"{m.lease} · {m.tenant}" for m in items})
    markers = {
        "term end": ("square", svg.PALETTE[0]),
        "notice effective": ("cross", svg.PALETTE[3]),
        "renewal starts": ("triangle", svg.PALETTE[2]),
        "commencement": ("circle", svg.PALETTE[1]),
    }
    left = max((svg.text_width(lease) for lease in leases), default=0) + 14
    plot_w, pitch = 560.0, 26.0
    end = today + dt.timedelta(days=days)
    d = svg.Drawing(left + plot_w + 40)  # room for half of the last date label
    kinds = [k for k in markers if any(m.kind == k for m in items)]
    top = d.legend([(k, *markers[k]) for k in kinds], left, 0, plot_w) + 6
    bottom = top + pitch * max(len(leases), 1)

    def x(when: dt.datetime) -> float:
        return left + (when - today) / (end - today) * plot_w

    d.element(
        "rect", x=left, y=top, width=x(today + dt.timedelta(days=1)) - left,
        height=bottom - top, fill=svg.PALETTE[7], fill_opacity=0.4,
    )  # fmt: skip
    for tick in svg.month_ticks(today, end, plot_w):
        d.line(x(tick), top, x(tick), bottom, stroke_opacity=0.15)
        d.line(x(tick), bottom, x(tick), bottom + 5)
        d.text(x(tick), bottom + 14, f"{tick:%Y-%m-%d}", text_anchor="middle", font_size=svg.SMALL)
    for i, lease in enumerate(leases):
        middle = top + pitch * (i + 0.5)
        d.line(left, middle, left + plot_w, middle, stroke_opacity=0.15)
        d.text(left - 8, middle, lease, text_anchor="end")
    for m in items:
        lease = f"{m.lease} · {m.tenant}"
        shape, color = markers[m.kind]
        tip = f"{lease}: {m.kind} {m.when:%Y-%m-%d}"
        d.marker(shape, x(m.when), top + pitch * (leases.index(lease) + 0.5), 11, color, tip=tip)
    d.line(left, top, left, bottom)
    d.line(left, bottom, left + plot_w, bottom)
    d.text(left + plot_w / 2, bottom + 34, f"date (UTC), next {days} days", text_anchor="middle")
    return d.render(bottom + 46, title="Upcoming term ends, notices and renewals")


def totals(rows: list[CapacityRow]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for row in rows:
        for state, n in row.gpus.items():
            out[state] += n
        out["total"] += row.total
    return dict(out)


@operator_page("leasing.view_lease")
def dashboard(request: HttpRequest) -> HttpResponse:
    """Every operator role reads leases, so every role has the dashboard and its own inbox;
    the fleet's sections (capacity, training across campuses) only for who may view nodes, the
    open reclaim decisions only for who may see them."""
    now = timezone.now()
    user = request.user
    fleet = user.has_perm("clusters.view_node")
    rows = capacity(now) if fleet else []
    rates = run_rate_by_tenant(now)
    upcoming = milestones(now)
    run_rate = sum((r["monthly_rate"] for r in rates), Decimal(0))
    context = {
        "title": "Operator dashboard",
        "now": now,
        "inbox": inbox(user, now),
        "fleet": fleet,
        "capacity_rows": rows,
        "capacity_totals": totals(rows),
        "capacity_chart": capacity_chart(rows) if fleet else "",
        "states": STATES,
        "state_labels": STATE_LABELS,
        "run_rate": format_money(run_rate),
        "rates": rates,
        "milestones": upcoming,
        "timeline_chart": timeline_chart(upcoming, now) if upcoming else "",
        "cross": cross_campus(now) if fleet else None,
        "decisions": open_decisions() if user.has_perm("reclaim.view_reclaimdecision") else None,
    }
    return render_operator(request, "operator/dashboard.html", context)
