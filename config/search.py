"""One search box on every operator and admin page: a lease, tenant, invoice, credit note,
node or hostname, by what people type (a number, a name, part of a hostname).

An exact hit on a number or a hostname opens that object; anything else lists up to
`LIMIT` matches per kind, each kind only for who may view it. A constant number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Model, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from billing.models import CreditNote, Invoice
from clusters.models import Node
from common.access import operator_page
from common.pages import render_operator
from leasing.models import Lease, Tenant

LIMIT = 20
MAX_QUERY = 100


@dataclass(frozen=True)
class Hit:
    kind: str
    label: str
    detail: str
    url: str


def _admin_url(obj: Model) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def _hits(request: HttpRequest, q: str) -> list[Hit]:
    can = request.user.has_perm
    hits: list[Hit] = []
    if can("leasing.view_tenant"):
        for tenant in Tenant.objects.filter(Q(name__icontains=q) | Q(slug__icontains=q))[:LIMIT]:
            hits.append(Hit("Tenant", tenant.name, tenant.slug, _admin_url(tenant)))
    if can("leasing.view_lease"):
        leases = Lease.objects.select_related("tenant").filter(
            Q(number__icontains=q) | Q(reference__icontains=q) | Q(tenant__name__icontains=q)
        )
        for lease in leases.order_by("-commencement")[:LIMIT]:
            detail = f"{lease.tenant.name}, {lease.get_status_display().lower()}"
            hits.append(Hit("Lease", lease.number, detail, _admin_url(lease)))
    if can("billing.view_invoice"):
        for invoice in Invoice.objects.select_related("tenant").filter(number__icontains=q)[:LIMIT]:
            hits.append(Hit("Invoice", str(invoice), invoice.tenant.name, _admin_url(invoice)))
    if can("billing.view_creditnote"):
        for note in CreditNote.objects.select_related("tenant").filter(number__icontains=q)[:LIMIT]:
            hits.append(Hit("Credit note", str(note), note.tenant.name, _admin_url(note)))
    if can("clusters.view_node"):
        nodes = Node.objects.select_related("cluster__site").filter(hostname__icontains=q)
        for node in nodes.order_by("hostname")[:LIMIT]:
            hits.append(Hit("Node", node.hostname, str(node.cluster), _admin_url(node)))
    return hits


@operator_page("leasing.view_tenant")
def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:MAX_QUERY]
    hits = _hits(request, q) if q else []
    exact = [h for h in hits if h.label.lower() == q.lower() and h.kind != "Tenant"]
    if len(exact) == 1:
        return HttpResponseRedirect(exact[0].url)
    return render_operator(
        request,
        "operator/search.html",
        {"title": f"Search: {q}" if q else "Search", "q": q, "hits": hits, "limit": LIMIT},
    )
