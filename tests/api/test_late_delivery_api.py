"""`POST /api/v1/leases/{id}/lines/{line_id}/cancel-late-delivery/`: the tenant cancels a line
delivered late and gets its invoices back as credit; refusals are 409s naming why, other
tenants' lines 404, and an Idempotency-Key replays the first answer."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.choices import CreditNoteKind
from billing.models import CreditNote, Invoice
from clusters.models import Node
from leasing.choices import LineStatus
from leasing.models import Allocation
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import ClusterFactory

pytestmark = pytest.mark.django_db

RATE = Decimal("3000000.00")


def late_lease(tenant, *, accepted=94, days_ago=40):
    """Tenant's lease commenced `days_ago` local days ago (UTC), one line of 100 nodes of which
    `accepted` were accepted at commencement; its first month invoiced."""
    today = timezone.now().astimezone(dt.UTC).date()
    lease, (line,) = lease_with_lines(
        tenant=tenant,
        commencement_date=today - dt.timedelta(days=days_ago),
        rates=(RATE,),
        term_days=365,
    )
    line.cluster = ClusterFactory()
    line.node_count = 100
    line.save(update_fields=["cluster", "node_count"])
    nodes = Node.objects.bulk_create(
        Node(cluster=line.cluster, hostname=f"api-{lease.pk}-{i}") for i in range(100)
    )
    Allocation.objects.bulk_create(
        Allocation(
            line=line,
            node=node,
            starts_at=lease.commencement,
            ends_at=lease.term_end,
            accepted_at=lease.commencement if i < accepted else None,
        )
        for i, node in enumerate(nodes)
    )
    services.lease_bill(lease_id=lease.pk, now=lease.commencement + dt.timedelta(hours=1))
    return lease, line


def url(lease, line):
    return f"/api/v1/leases/{lease.pk}/lines/{line.pk}/cancel-late-delivery/"


def test_the_tenant_cancels_and_gets_every_invoice_back(api_a, tenant_a):
    lease, line = late_lease(tenant_a)
    invoiced = sum(i.total for i in Invoice.objects.filter(lease=lease))
    response = api_a.post(url(lease, line), {"reason": "too late"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["line"], body["accepted_nodes"], body["node_count"]) == (line.pk, 94, 100)
    notes = CreditNote.objects.filter(lease=lease, kind=CreditNoteKind.CANCELLATION)
    assert {n["number"] for n in body["credit_notes"]} == {n.number for n in notes}
    delivered = sum(
        n.total for n in CreditNote.objects.filter(lease=lease, kind=CreditNoteKind.DELIVERY)
    )
    assert Decimal(body["credited"]) == invoiced - delivered
    line.refresh_from_db()
    assert line.status == LineStatus.CANCELLED
    # The credit notes are the tenant's documents, of kind `cancellation`.
    listed = api_a.get("/api/v1/credit-notes/").json()["results"]
    assert {n["kind"] for n in listed} >= {"cancellation"}
    # Asked again: refused, nothing written.
    again = api_a.post(url(lease, line), {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "line_already_cancelled"
    assert notes.count() == len(body["credit_notes"])


def test_an_idempotency_key_replays_the_first_answer(api_a, tenant_a):
    lease, line = late_lease(tenant_a)
    headers = {"HTTP_IDEMPOTENCY_KEY": "cancel-1"}
    first = api_a.post(url(lease, line), {}, format="json", **headers)
    second = api_a.post(url(lease, line), {}, format="json", **headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).count() == len(
        first.json()["credit_notes"]
    )


def test_refusals_name_why(api_a, tenant_a):
    delivered, d_line = late_lease(tenant_a, accepted=95)
    early, e_line = late_lease(tenant_a, days_ago=10)
    response = api_a.post(url(delivered, d_line), {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "line_delivered")
    assert response.json()["extra"]["accepted_nodes"] == 95
    response = api_a.post(url(early, e_line), {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "line_cancellation_not_yet")
    assert not CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).exists()


def test_another_tenants_line_is_not_found(api_b, tenant_a, tenant_b):
    lease, line = late_lease(tenant_a)
    own, _ = late_lease(tenant_b)
    assert api_b.post(url(lease, line), {}, format="json").status_code == 404
    # A line of another lease under the tenant's own lease id: 404 too.
    assert (
        api_b.post(
            f"/api/v1/leases/{own.pk}/lines/{line.pk}/cancel-late-delivery/", {}, format="json"
        ).status_code
        == 404
    )
    line.refresh_from_db()
    assert line.status == LineStatus.OPEN


def test_unknown_fields_are_refused(api_a, tenant_a):
    lease, line = late_lease(tenant_a)
    response = api_a.post(url(lease, line), {"force": True}, format="json")
    assert response.status_code == 400
    assert "force" in response.json()["extra"]["fields"]
