"""URLs of the API benchmark: the project's URLs plus the floor, bare Django views that return
the same JSON from the same query as the lease and invoice lists (no DRF, no authentication,
no throttling, no serializers)."""

from django.http import JsonResponse
from django.urls import path

from billing.api.selectors import invoice_list_for_tenant
from config.urls import urlpatterns as project_urls
from leasing.api.selectors import lease_available_actions, lease_list_for_tenant
from leasing.models import Tenant

PAGE = 50


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _money(value):
    return f"{value:.2f}" if value is not None else None


def floor_leases(request):
    from django.utils import timezone

    tenant = Tenant.objects.get(slug="bench-lab")
    now = timezone.now()
    rows = []
    for lease in lease_list_for_tenant(tenant).order_by("-id")[:PAGE]:
        rows.append(
            {
                "id": lease.pk,
                "number": lease.number,
                "status": lease.status,
                "listing": lease.listing_id,
                "currency": lease.currency,
                "contract_timezone": lease.contract_timezone,
                "commencement_date": lease.commencement_date.isoformat(),
                "commencement": _iso(lease.commencement),
                "term_end": _iso(lease.term_end),
                "effective_end": _iso(lease.effective_end),
                "end": _iso(lease.end),
                "node_count": lease.api_node_count,
                "monthly_rate": _money(lease.api_monthly_rate),
                "created_at": _iso(lease.created_at),
                "available_actions": lease_available_actions(lease, now=now),
            }
        )
    return JsonResponse({"next": None, "previous": None, "results": rows})


def floor_invoices(request):
    tenant = Tenant.objects.get(slug="bench-lab")
    rows = [
        {
            "id": inv.pk,
            "number": inv.number,
            "lease": {"id": inv.lease_id, "number": inv.lease.number},
            "kind": inv.kind,
            "period": inv.period.isoformat(),
            "period_start": _iso(inv.period_start),
            "period_end": _iso(inv.period_end),
            "status": inv.status,
            "currency": inv.currency,
            "total": _money(inv.total),
            "issued_at": _iso(inv.issued_at),
            "due_at": _iso(inv.due_at),
            "paid_at": _iso(inv.paid_at),
            "is_overdue": inv.is_overdue,
        }
        for inv in invoice_list_for_tenant(tenant).order_by("-id")[:PAGE]
    ]
    return JsonResponse({"next": None, "previous": None, "results": rows})


urlpatterns = [
    path("floor/leases/", floor_leases),
    path("floor/invoices/", floor_invoices),
    *project_urls,
]
