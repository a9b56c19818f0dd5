"""A node's page: who holds node X and what happened to it (docs/rules/fleet.md).

`/operator/fleet/nodes/<hostname>/`: the node, its current holder (tenant, lease, line,
period; a holdover counts, by the allocator's rule `leasing.selectors.held_at`), its allocation
history, acceptance records, incidents, the maintenance windows touching it, the replacements
that took it out or brought it in, and its latest health events. Every row names its objects,
shows instants with the time zone named, and links to the admin. `/operator/fleet/nodes/?q=`
finds nodes by hostname. A fixed number of queries per page, bounded lists.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from clusters.fleet import windows_of_nodes
from clusters.models import HealthEvent, Node
from common.access import operator_page
from common.pages import render_operator
from leasing.models import AcceptanceRecord, Allocation, Replacement
from leasing.selectors import held_at

READ = (
    "clusters.view_node",
    "leasing.view_allocation",
    "leasing.view_acceptancerecord",
    "leasing.view_replacement",
    "clusters.view_incident",
    "clusters.view_maintenancewindow",
    "clusters.view_healthevent",
)
HISTORY_LIMIT = 200
HEALTH_LIMIT = 50
SEARCH_LIMIT = 50


def admin_url(model: str, pk: int | None) -> str | None:
    """The admin change page of an object, or None where that admin is not installed."""
    if pk is None:
        return None
    try:
        return reverse(f"admin:{model}_change", args=[pk])
    except NoReverseMatch:
        return None


@operator_page(*READ)
def node_search(request: HttpRequest) -> HttpResponse:
    """Nodes whose hostname contains `q`; an exact hostname goes straight to its page."""
    q = (request.GET.get("q") or "").strip()
    found: list[Node] = []
    if q:
        exact = Node.objects.filter(hostname__iexact=q).first()
        if exact is not None:
            return redirect("operator:fleet-node", hostname=exact.hostname)
        found = list(
            Node.objects.filter(hostname__icontains=q)
            .select_related("cluster__site")
            .order_by("hostname")[:SEARCH_LIMIT]
        )
    context = {
        "title": "Nodes",
        "q": q,
        "found": found,
        "limit": SEARCH_LIMIT,
    }
    return render_operator(request, "operator/fleet/node_search.html", context)


def _allocation_row(a: Allocation) -> dict[str, Any]:
    lease = a.line.lease
    return {
        "allocation": a,
        "lease": lease,
        "tenant": lease.tenant.name,
        "line": a.line_id,
        "url": admin_url("leasing_allocation", a.pk),
        "lease_url": admin_url("leasing_lease", lease.pk),
    }


@operator_page(*READ)
def node_page(request: HttpRequest, hostname: str) -> HttpResponse:
    node = get_object_or_404(
        Node.objects.select_related("cluster__site", "cluster__accelerator"), hostname=hostname
    )
    now = timezone.now()
    allocations = Allocation.objects.filter(node=node).select_related("line__lease__tenant")
    holders = [_allocation_row(a) for a in allocations.filter(held_at(now, now=now))]
    history = [_allocation_row(a) for a in allocations.order_by("-starts_at")[:HISTORY_LIMIT]]
    acceptance = [
        (r, admin_url("leasing_acceptancerecord", r.pk))
        for r in AcceptanceRecord.objects.filter(node=node)
        .select_related("allocation__line__lease", "signed_by")
        .order_by("-signed_at", "-pk")[:HISTORY_LIMIT]
    ]
    incidents = [
        (i, admin_url("clusters_incident", i.pk))
        for i in node.incidents.select_related("opened_by", "resolved_by").order_by(
            "-opened_at", "-pk"
        )[:HISTORY_LIMIT]
    ]
    windows = [
        (w, admin_url("clusters_maintenancewindow", w.pk))
        for w in windows_of_nodes([node.pk]).order_by("-starts_at", "-pk")[:HISTORY_LIMIT]
    ]
    replacements = [
        {
            "r": r,
            "direction": "out" if r.failed_allocation.node_id == node.pk else "in",
            "url": admin_url("leasing_replacement", r.pk),
            "lease_url": admin_url("leasing_lease", r.line.lease_id),
        }
        for r in Replacement.objects.filter(
            Q(failed_allocation__node=node) | Q(spare_allocation__node=node)
        )
        .select_related(
            "line__lease__tenant",
            "failed_allocation__node",
            "spare_allocation__node",
            "incident",
            "actor",
        )
        .order_by("-at", "-pk")[:HISTORY_LIMIT]
    ]
    health = [
        (e, admin_url("clusters_healthevent", e.pk))
        for e in HealthEvent.objects.filter(node=node)
        .select_related("source")
        .order_by("-observed_at", "-pk")[:HEALTH_LIMIT]
    ]
    context = {
        "title": f"Node {node.hostname}",
        "node": node,
        "node_url": admin_url("clusters_node", node.pk),
        "now": now,
        "holders": holders,
        "history": history,
        "acceptance": acceptance,
        "incidents": incidents,
        "windows": windows,
        "replacements": replacements,
        "health": health,
        "limit": HISTORY_LIMIT,
        "health_limit": HEALTH_LIMIT,
        "allocations_url": reverse("admin:leasing_allocation_changelist") + f"?q={node.hostname}",
    }
    return render_operator(request, "operator/fleet/node.html", context)
