"""URLs of the API benchmark: the project's URLs plus the floor, bare Django views that return
the same JSON from the same query as the lease and invoice lists (no DRF, no authentication,
no throttling, no filters, no pagination: the page is the first 50 rows, rendered by the same
row functions). `floor/noop/` answers without touching the database: the ceiling of any view
on the same server and machine."""

from django.http import JsonResponse
from django.urls import path
from django.utils import timezone

from billing.api.selectors import invoice_rows_for_tenant
from billing.api.serializers import invoice_row
from config.urls import urlpatterns as project_urls
from leasing.api.selectors import lease_rows_for_tenant
from leasing.api.serializers import lease_row
from leasing.models import Tenant

PAGE = 50


def floor_leases(request):
    tenant = Tenant.objects.get(slug="bench-lab")
    now = timezone.now()
    rows = lease_rows_for_tenant(tenant).order_by("-id")[:PAGE]
    return JsonResponse(
        {"next": None, "previous": None, "results": [lease_row(row, now) for row in rows]}
    )


def floor_invoices(request):
    tenant = Tenant.objects.get(slug="bench-lab")
    rows = invoice_rows_for_tenant(tenant).order_by("-id")[:PAGE]
    return JsonResponse(
        {"next": None, "previous": None, "results": [invoice_row(row) for row in rows]}
    )


def noop(request):
    """No database, no work: what any Django request costs on this server and machine."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("floor/noop/", noop),
    path("floor/leases/", floor_leases),
    path("floor/invoices/", floor_invoices),
    *project_urls,
]
