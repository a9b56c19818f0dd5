"""The lease and invoice lists render rows (dicts) directly; each row must come out exactly as
the resource's serializer renders the model, whatever the state of the lease or invoice, and
the cursor must page through rows in every ordering the list offers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.api.selectors import invoice_list_for_tenant
from billing.api.serializers import InvoiceSerializer
from billing.choices import InvoiceStatus
from billing.models import Invoice
from leasing.api.selectors import lease_list_for_tenant
from leasing.api.serializers import LeaseSerializer
from leasing.choices import LeaseStatus
from tests.factories.leasing import LeaseFactory, LeaseLineFactory


@pytest.fixture
def varied(tenant_a, world_a, cluster):
    """Beside world A's lease (notice given, a withdrawal awaiting the tenant, invoiced): leases
    with no lines, no listing, an early end, expired, cancelled; invoices issued, paid, void and
    overdue, in a zone far from UTC."""
    now = timezone.now()
    requested = LeaseFactory(tenant=tenant_a, status=LeaseStatus.DRAFT)  # no lines yet
    ended_early = LeaseFactory(
        tenant=tenant_a,
        status=LeaseStatus.ACTIVE,
        contract_timezone="Asia/Kolkata",
        commencement_date=dt.date(2026, 3, 1),
    )
    ended_early.effective_end = ended_early.term_end - dt.timedelta(days=30)
    ended_early.save(update_fields=["effective_end"])
    LeaseLineFactory(lease=ended_early, cluster=cluster, node_count=3)
    LeaseLineFactory(lease=ended_early, cluster=cluster, monthly_rate=Decimal("0.05"))
    ended = LeaseFactory(tenant=tenant_a, status=LeaseStatus.EXPIRED)
    LeaseLineFactory(lease=ended, cluster=cluster)
    LeaseFactory(tenant=tenant_a, status=LeaseStatus.CANCELLED, listing=None)
    states = [
        (InvoiceStatus.ISSUED, None, False),
        (InvoiceStatus.PAID, now, False),
        (InvoiceStatus.VOID, None, False),
        (InvoiceStatus.ISSUED, None, True),
    ]
    for i, (status, paid_at, overdue) in enumerate(states):
        Invoice.objects.create(
            number=f"INV-R-{i}",
            tenant=tenant_a,
            lease=ended_early,
            period=dt.date(2026, 3 + i, 1),
            period_start=dt.datetime(2026, 3 + i, 1, tzinfo=dt.UTC) - dt.timedelta(hours=5.5),
            period_end=dt.datetime(2026, 4 + i, 1, tzinfo=dt.UTC) - dt.timedelta(hours=5.5),
            status=status,
            total=Decimal("1234567.80"),
            issued_at=now,
            due_at=now + dt.timedelta(days=30),
            paid_at=paid_at,
            is_overdue=overdue,
            void_resolution="waive" if status == InvoiceStatus.VOID else "",
        )
    return {"requested": requested, "ended_early": ended_early, "ended": ended}


def _all_pages(client, path, params, *, back=False):
    """Every row, following `next` links; with `back`, then `previous` links from the last
    page to the first, in the order they come (each page's rows in list order)."""
    seen, url, query, body = [], path, dict(params), None
    while url:
        response = client.get(url, query)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["results"]
        url, query = body["next"], {}
    if not back:
        return seen
    pages = [body["results"]]
    while url := body["previous"]:
        body = client.get(url).json()
        pages.append(body["results"])
    return [row for page in reversed(pages) for row in page]


@pytest.mark.django_db
def test_each_lease_row_is_what_the_serializer_renders(varied, tenant_a, api_a):
    listed = _all_pages(api_a, "/api/v1/leases/", {"page_size": 200})
    now = timezone.now()
    expected = {
        lease.pk: LeaseSerializer(lease, context={"now": now}).data
        for lease in lease_list_for_tenant(tenant_a)
    }
    assert len(listed) == len(expected) >= 5
    for row in listed:
        assert row == expected[row["id"]], row["number"]
    actions = {row["id"]: row["available_actions"] for row in listed}
    assert "confirm_notice_withdrawal" in {a for acts in actions.values() for a in acts}
    assert actions[varied["requested"].pk] == []
    requested = next(r for r in listed if r["id"] == varied["requested"].pk)
    assert (requested["node_count"], requested["monthly_rate"]) == (None, None)
    early = next(r for r in listed if r["id"] == varied["ended_early"].pk)
    assert early["end"] == early["effective_end"] != early["term_end"]
    assert (early["node_count"], early["monthly_rate"]) == (13, "1250000000.05")


@pytest.mark.django_db
def test_each_invoice_row_is_what_the_serializer_renders(varied, tenant_a, api_a):
    listed = _all_pages(api_a, "/api/v1/invoices/", {"page_size": 200})
    expected = {
        invoice.pk: InvoiceSerializer(invoice).data for invoice in invoice_list_for_tenant(tenant_a)
    }
    assert len(listed) == len(expected) >= 5
    for row in listed:
        assert row == expected[row["id"]], row["number"]
    assert {r["status"] for r in listed} >= {"issued", "paid", "void"}
    assert any(r["is_overdue"] for r in listed)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "ordering"),
    [
        ("/api/v1/leases/", "id"),
        ("/api/v1/leases/", "commencement"),
        ("/api/v1/leases/", "-term_end"),
        ("/api/v1/invoices/", "-period_start"),
        ("/api/v1/invoices/", "issued_at"),
    ],
)
def test_the_cursor_pages_rows_in_every_ordering(varied, tenant_a, api_a, path, ordering):
    """Ties on the ordered field span several pages (seven leases commence together, four
    invoices share an issue instant): each row still comes exactly once."""
    for _ in range(4):
        LeaseFactory(tenant=tenant_a)  # commencing 2026-01-01, as three others do
    one_page = _all_pages(api_a, path, {"page_size": 200, "ordering": ordering})
    paged = _all_pages(api_a, path, {"page_size": 2, "ordering": ordering})
    assert [r["id"] for r in paged] == [r["id"] for r in one_page]
    backwards = _all_pages(api_a, path, {"page_size": 2, "ordering": ordering}, back=True)
    assert [r["id"] for r in backwards] == [r["id"] for r in one_page]
    assert len({r["id"] for r in paged}) == len(paged) >= 5
    key = ordering.lstrip("-")
    values = [r[key] for r in paged]
    assert values == sorted(values, reverse=ordering.startswith("-"))
