"""List endpoints cost a constant number of queries whatever the page size."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.choices import CreditNoteStatus, InvoiceStatus
from billing.models import CreditNote, Invoice
from leasing.choices import NoticeOutcome, Party
from leasing.models import Notice
from tests.factories.leasing import LeaseFactory, LeaseLineFactory
from webhooks.models import WebhookEndpoint

ROWS = 60


@pytest.fixture
def many(tenant_a, world_a, cluster, listing):
    """ROWS of every listed kind for tenant A."""
    now = timezone.now()
    leases = []
    for i in range(ROWS):
        lease = LeaseFactory(tenant=tenant_a, number=f"L-Q-{i:04d}")
        LeaseLineFactory(lease=lease, cluster=cluster)
        LeaseLineFactory(lease=lease, cluster=cluster)
        leases.append(lease)
    Notice.objects.bulk_create(
        Notice(
            lease=world_a["lease"],
            given_by=Party.TENANT,
            received_at=now,
            notice_date=now.date(),
            effective_end=world_a["lease"].term_end,
            outcome=NoticeOutcome.MOOT,
            status="moot",
        )
        for _ in range(ROWS)
    )
    invoices = Invoice.objects.bulk_create(
        Invoice(
            number=f"INV-Q-{i:05d}",
            tenant=tenant_a,
            lease=lease,
            period=dt.date(2026, 1, 1),
            period_start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            period_end=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
            status=InvoiceStatus.ISSUED,
            total=Decimal("10.00"),
            issued_at=now,
            due_at=now + dt.timedelta(days=30),
        )
        for i, lease in enumerate(leases)
    )
    CreditNote.objects.bulk_create(
        CreditNote(
            number=f"CN-Q-{i:05d}",
            tenant=tenant_a,
            lease_id=invoice.lease_id,
            invoice=invoice,
            status=CreditNoteStatus.ISSUED,
            total=Decimal("1.00"),
            issued_at=now,
        )
        for i, invoice in enumerate(invoices)
    )
    WebhookEndpoint.objects.bulk_create(
        WebhookEndpoint(tenant=tenant_a, url=f"https://example.com/{i}", secret="whsec_AA==")
        for i in range(ROWS)
    )
    return world_a


def lists(world):
    return [
        "/api/v1/listings/",
        "/api/v1/leases/",
        "/api/v1/leases/?status=active&status=notice_given",
        f"/api/v1/leases/{world['lease'].pk}/notices/",
        "/api/v1/invoices/",
        "/api/v1/invoices/?period_start__gte=2025-01-01",
        "/api/v1/credit-notes/",
        "/api/v1/webhook-endpoints/",
    ]


@pytest.mark.django_db
def test_list_queries_do_not_grow_with_the_page(many, api_a, django_assert_num_queries):
    api_a.get("/api/v1/leases/")  # the key's last-used stamp is written at most once a minute
    for path in lists(many):
        sep = "&" if "?" in path else "?"
        with CaptureQueriesContext(connection) as one:
            small = api_a.get(f"{path}{sep}page_size=1")
        assert small.status_code == 200
        assert len(small.json()["results"]) == 1
        with django_assert_num_queries(len(one.captured_queries)):
            big = api_a.get(f"{path}{sep}page_size=50")
        assert big.status_code == 200, path
        if "listings" not in path:
            assert len(big.json()["results"]) == 50, path
        assert len(one.captured_queries) <= 4, (path, [q["sql"] for q in one.captured_queries])


@pytest.mark.django_db
def test_detail_queries_are_bounded(many, api_a, django_assert_max_num_queries):
    api_a.get("/api/v1/leases/")
    world = many
    for path in (
        f"/api/v1/leases/{world['lease'].pk}/",
        f"/api/v1/invoices/{world['invoice'].pk}/",
        f"/api/v1/credit-notes/{world['credit_note'].pk}/",
    ):
        with django_assert_max_num_queries(8):
            assert api_a.get(path).status_code == 200
