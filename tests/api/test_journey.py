"""A tenant's journey through HTTP only; the operator and the scheduler act through services.

Browse listings, request a lease, the operator approves, the boundary job activates it, the
billing run issues the invoices, the tenant asks for a termination quote and gives notice, the
next billing run credits what the notice cut: the quote and the credit note agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services as billing
from leasing import boundaries, services
from leasing.models import Allocation, Lease
from tests.factories.leasing import published_listing

from .conftest import tomorrow


@pytest.mark.django_db
def test_lease_journey(api_a, cluster, operator, django_capture_on_commit_callbacks):
    offer = published_listing(
        cluster, node_count=8, notice_days=10, earliest_start=dt.date(2026, 1, 1), title="8×H100"
    )
    listings = api_a.get("/api/v1/listings/", {"accelerator": "h100"}).json()["results"]
    chosen = next(item for item in listings if item["id"] == offer.pk)
    assert chosen["gpu_count"] == 64
    assert chosen["monthly_rate_per_node"] == "100000.00"

    created = api_a.post(
        "/api/v1/lease-requests/",
        {"listing": chosen["id"], "node_count": 4, "commencement_date": tomorrow().isoformat()},
        format="json",
        HTTP_IDEMPOTENCY_KEY="journey-1",
    )
    assert created.status_code == 201, created.content
    lease_json = created.json()
    assert lease_json["status"] == "draft"
    assert lease_json["monthly_rate"] == "400000.00"
    assert lease_json["available_actions"] == []
    lease_id = lease_json["id"]

    # The operator approves (admin → service); the boundary job activates at commencement.
    lease = Lease.objects.get(pk=lease_id)
    services.lease_approve(lease=lease, actor=operator)
    detail = api_a.get(f"/api/v1/leases/{lease_id}/").json()
    assert detail["status"] == "scheduled"
    assert detail["allocation_summary"][0]["nodes"] == 4
    assert "give_notice" in detail["available_actions"]
    # The nodes are handed over on time (rent follows accepted nodes, docs/rules/fleet.md).
    Allocation.objects.filter(line__lease=lease).update(accepted_at=lease.commencement)
    commenced = lease.commencement + dt.timedelta(minutes=5)
    boundaries.process_boundaries(now=commenced)
    assert api_a.get(f"/api/v1/leases/{lease_id}/").json()["status"] == "active"
    assert [x["id"] for x in api_a.get("/api/v1/leases/", {"status": "active"}).json()["results"]]

    billing.billing_run(now=commenced)
    invoices = api_a.get("/api/v1/invoices/", {"lease": lease_id}).json()["results"]
    assert invoices, "the first month is invoiced at commencement"
    assert all(inv["status"] == "issued" and inv["currency"] == "USD" for inv in invoices)
    invoice = api_a.get(f"/api/v1/invoices/{invoices[0]['id']}/").json()
    assert Decimal(invoice["total"]) == sum(Decimal(line["amount"]) for line in invoice["lines"])

    today = timezone.now().astimezone(dt.UTC).date()
    quote = api_a.get(
        f"/api/v1/leases/{lease_id}/termination-quote/", {"notice_date": today.isoformat()}
    )
    assert quote.status_code == 200, quote.content
    quote = quote.json()
    assert quote["outcome"] == "ends"

    notice = api_a.post(f"/api/v1/leases/{lease_id}/notices/", {"reason": "moving"}, format="json")
    assert notice.status_code == 201, notice.content
    notice = notice.json()
    assert notice["effective_end"] == quote["effective_end"]
    assert notice["outcome"] == quote["outcome"]
    assert notice["given_by"] == "tenant"
    detail = api_a.get(f"/api/v1/leases/{lease_id}/").json()
    assert detail["status"] == "notice_given"
    assert detail["effective_end"] == quote["effective_end"]
    listed = api_a.get(f"/api/v1/leases/{lease_id}/notices/").json()["results"]
    assert [n["id"] for n in listed] == [notice["id"]]

    billing.billing_run(now=commenced + dt.timedelta(minutes=5))
    credit_notes = api_a.get("/api/v1/credit-notes/", {"lease": lease_id}).json()["results"]
    credited = sum((Decimal(c["total"]) for c in credit_notes), Decimal("0.00"))
    assert credited == Decimal(quote["credit_due"])
    invoiced = sum(
        Decimal(i["total"])
        for i in api_a.get("/api/v1/invoices/", {"lease": lease_id}).json()["results"]
    )
    assert invoiced - credited == Decimal(quote["rent_due"])
    for note in credit_notes:
        full = api_a.get(f"/api/v1/credit-notes/{note['id']}/").json()
        assert full["lines"]
        assert all(line["service_start"] >= quote["effective_end"] for line in full["lines"])
