"""The dashboard's inbox (config/inbox.py): what needs doing, each with a link to act, each
kind only for who may see it."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from billing import dunning
from billing import services as billing
from billing.choices import ReminderStep
from billing.models import Invoice
from clusters import fleet
from config.inbox import inbox
from leasing.choices import LeaseStatus
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import TenantFactory
from tests.operator.test_permissions import staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def work():
    """A pending request, an open incident, an overdue invoice, a lease whose last useful
    notice date is in a week."""
    now = timezone.now()
    draft, _ = lease_with_lines(commencement_date=now.date() + dt.timedelta(days=30))
    draft.status = LeaseStatus.DRAFT
    draft.save(update_fields=["status"])
    # Term ends in 100 days with 90 days' notice: the last useful notice date is in 8 days.
    ending, lines = lease_with_lines(
        commencement_date=now.date() - dt.timedelta(days=80), term_days=180, with_nodes=True
    )
    node = lines[0].cluster.nodes.first()
    incident = fleet.incident_open(
        node=node, category="gpu", source="operator", now=now - dt.timedelta(days=2)
    )
    lease_with_lines(commencement_date=dt.date(2025, 1, 1))
    billing.billing_run(now=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    billing.mark_overdue(now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    return {"draft": draft, "ending": ending, "incident": incident, "node": node}


def items(user):
    return {item.key: item for item in inbox(user, timezone.now())}


def test_each_kind_of_work_is_counted_named_and_linked(work):
    got = items(staff("viewer-i", "viewer"))
    assert got["lease-requests"].count == 1
    assert work["draft"].number in got["lease-requests"].rows[0][0]
    assert got["incidents"].count == 1
    assert got["incidents"].urgent  # open for more than a day
    assert got["incidents"].rows[0][1] == reverse(
        "operator:fleet-node", args=[work["node"].hostname]
    )
    assert got["notice-deadlines"].count == 1
    assert work["ending"].number in got["notice-deadlines"].rows[0][0]
    overdue = Invoice.objects.filter(is_overdue=True).count()
    assert overdue > 0
    assert got["overdue"].count == overdue
    assert got["overdue"].detail.startswith("$")
    # Work first, urgent first.
    keys = [i.key for i in inbox(staff("viewer-j", "viewer"), timezone.now())]
    assert keys.index("incidents") < keys.index("failed-webhooks")


def test_each_kind_shows_only_to_who_may_see_it(work):
    capacity = items(staff("capacity-i", "capacity"))
    finance = items(staff("finance-i", "finance"))
    assert "overdue" not in capacity
    assert "incidents" in capacity
    assert "overdue" in finance
    assert "incidents" not in finance


def test_the_dashboard_shows_the_inbox_with_links_that_open(client, work):
    client.force_login(staff("viewer-k", "viewer"))
    page = client.get(reverse("operator:dashboard"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="inbox-incidents"' in html
    for item in inbox(staff("viewer-l", "viewer"), timezone.now()):
        assert escape(item.url) in html
        assert client.get(item.url).status_code == 200, item.key


def test_tenants_whose_dunning_escalated_are_listed_with_a_link_to_act(client):
    """The 30-day reminder is the escalation (docs/rules/receivables.md): a tenant still owing
    after it is listed once, whatever its number of invoices; one that paid is not."""
    owing, paying = TenantFactory(), TenantFactory()
    for tenant in (owing, owing, paying):
        lease_with_lines(tenant=tenant, commencement_date=dt.date(2025, 1, 1), term_days=31)
    billing.billing_run(now=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    sent = dunning.send_reminders(now=dt.datetime(2025, 3, 15, 9, tzinfo=dt.UTC))
    assert {step for _, step in sent.sent} == {ReminderStep.AFTER_30}
    for invoice in Invoice.objects.filter(tenant=paying):
        billing.invoice_mark_paid(invoice=invoice)
    got = items(staff("finance-e", "finance"))["dunning-escalations"]
    assert got.count == 1
    assert got.urgent
    ((label, url),) = got.rows
    assert label.startswith(f"{owing.name} · 2 invoice(s) · escalated 2025-03-15 09:00 UTC")
    client.force_login(staff("finance-f", "finance"))
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2
    assert client.get(got.url).status_code == 200
    # Shown only to who may read reminders.
    assert "dunning-escalations" not in items(staff("capacity-e", "capacity"))


def test_a_partly_paid_invoice_past_due_is_overdue_and_the_inbox_says_what_is_owed(client):
    from decimal import Decimal

    from billing import payments
    from billing.choices import InvoiceStatus
    from common.money import format_money

    lease, _ = lease_with_lines(commencement_date=dt.date(2025, 1, 1), rates=(Decimal("1000.00"),))
    billing.billing_run(now=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    invoice = Invoice.objects.get(lease=lease)
    payments.payment_record(
        tenant=lease.tenant,
        amount="400.00",
        value_date=dt.date(2025, 1, 10),
        reference="WIRE-1",
        now=dt.datetime(2025, 1, 10, tzinfo=dt.UTC),
    )
    billing.mark_overdue(now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert invoice.is_overdue
    owed = invoice.total - Decimal("400.00")

    got = items(staff("finance-o", "finance"))["overdue"]
    assert got.count == 1
    assert invoice.number in got.rows[0][0]
    assert got.detail == f"{format_money(owed)} owed in all."
    # The link lists it: partly paid invoices are not left out of the overdue list.
    client.force_login(staff("finance-p", "finance"))
    listing = client.get(got.url).content.decode()
    assert invoice.number in listing


def test_finance_opens_the_dashboard_and_its_own_inbox_without_the_fleet(client, work):
    """Finance reads leases, not nodes: it gets the dashboard with its overdue invoices (the
    inbox is theirs to act on), and no capacity or cross-campus section."""
    client.force_login(staff("finance-d", "finance"))
    page = client.get(reverse("operator:dashboard"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="inbox-overdue"' in html
    assert 'data-testid="inbox-incidents"' not in html
    assert 'id="capacity-h"' not in html
    assert 'id="cross-h"' not in html
    assert 'data-testid="run-rate"' in html
    client.force_login(staff("viewer-d", "viewer"))
    full = client.get(reverse("operator:dashboard")).content.decode()
    assert 'id="capacity-h"' in full
    assert 'id="cross-h"' in full
