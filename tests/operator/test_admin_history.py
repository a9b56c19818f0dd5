"""Change pages show the history of invoices, notices and reclaim decisions."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from billing.services import billing_run
from leasing import notices, services
from leasing.choices import Party
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    return client


def test_invoice_and_notice_pages_show_their_history(staff):
    now = timezone.now()
    today = now.date()
    lease = services.lease_request(
        tenant=TenantFactory(),
        listing=published_listing(cluster_with_nodes(3), earliest_start=today),
        node_count=2,
        commencement_date=today,
    )
    services.lease_approve(lease=lease)
    billing_run(now=now)
    invoice = Invoice.objects.filter(lease=lease).order_by("period_start").first()
    page = staff.get(reverse("admin:billing_invoice_change", args=[invoice.pk])).content.decode()
    assert "drafted" in page
    assert f"<td>issued</td><td>{invoice.number}" in page

    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=now + dt.timedelta(hours=1))
    notices.notice_withdraw_request(notice=notice, party=Party.TENANT)
    page = staff.get(reverse("admin:leasing_notice_change", args=[notice.pk])).content.decode()
    assert "notice.received" in page
    assert "notice.withdrawal_requested" in page


def test_decision_page_shows_its_transitions(staff):
    from reclaim.models import ReclaimDecision

    at = timezone.now()
    decision = ReclaimDecision.objects.create(
        title="Campus 3 B200",
        status="rejected",
        scope_kind="cluster",
        notice_date=at.date(),
        recommendation="reclaim",
        previous_recommendation="keep_leased",
        scored_at=at,
        flipped_at=at,
        decided_at=at + dt.timedelta(hours=1),
    )
    page = staff.get(
        reverse("admin:reclaim_reclaimdecision_change", args=[decision.pk])
    ).content.decode()
    assert "recommendation flipped" in page
    assert "Keep leased → Reclaim" in page
    assert "<td>rejected</td>" in page
