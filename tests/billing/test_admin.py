"""Operator admin and pages for billing: actions per row, printable invoice, revenue page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from billing import services
from billing.models import Invoice
from tests.factories.billing import RATE, lease_with_lines

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def billed():
    lease, _ = lease_with_lines(rates=(RATE, Decimal("920000000.00")))
    services.billing_run(now=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    lease.effective_end = dt.datetime(2026, 2, 20, tzinfo=dt.UTC)
    lease.save(update_fields=["effective_end"])
    services.billing_run(now=dt.datetime(2026, 2, 2, tzinfo=dt.UTC))
    return lease


def test_changelists_and_change_pages_render(staff_client, billed, django_assert_max_num_queries):
    for name in (
        "admin:billing_invoice_changelist",
        "admin:billing_creditnote_changelist",
        "admin:billing_billingrun_changelist",
        "admin:billing_numberseries_changelist",
    ):
        with django_assert_max_num_queries(20):
            assert staff_client.get(reverse(name)).status_code == 200
    invoice = Invoice.objects.first()
    page = staff_client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200
    assert invoice.number in page.content.decode()
    found = staff_client.get(reverse("admin:billing_invoice_changelist"), {"q": billed.number})
    assert found.context["cl"].result_count == 2


def test_actions_report_each_row(staff_client, billed):
    jan, feb = Invoice.objects.order_by("period")
    url = reverse("admin:billing_invoice_changelist")
    selected = {"action": "void_selected", "_selected_action": [jan.pk, feb.pk]}
    # First the form: nothing is voided before a reason and a resolution are given.
    form = staff_client.post(url, selected)
    assert form.status_code == 200
    assert "reason" in form.context["form"].fields
    missing = staff_client.post(url, {**selected, "apply": "1", "resolution": "waive"})
    assert missing.context["form"].errors["reason"]
    assert set(Invoice.objects.values_list("status", flat=True)) == {"issued"}

    response = staff_client.post(
        url,
        {**selected, "apply": "1", "reason": "wrong entity", "resolution": "reissue"},
        follow=True,
    )
    text = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(t.startswith("Voided: " + jan.number) for t in text)
    assert any("invoice_has_credit_notes" in t and feb.number in t for t in text)
    staff_client.post(url, {"action": "mark_paid_selected", "_selected_action": [feb.pk]})
    jan.refresh_from_db()
    feb.refresh_from_db()
    assert (jan.status, feb.status) == ("void", "paid")
    operator = response.wsgi_request.user
    assert (jan.void_reason, jan.void_resolution, jan.voided_by) == (
        "wrong entity",
        "reissue",
        operator,
    )
    assert feb.paid_by == operator
    page = staff_client.get(reverse("admin:billing_invoice_change", args=[jan.pk]))
    assert "Re-issue on the next billing run: wrong entity (by op)" in page.content.decode()


def test_invoice_print_page_is_staff_only(staff_client, billed):
    feb = Invoice.objects.get(period=dt.date(2026, 2, 1))
    url = reverse("billing:invoice_print", args=[feb.pk])
    assert url == f"/operator/billing/invoices/{feb.pk}/print/"
    assert Client().get(url).status_code == 302  # anonymous: to the admin login
    page = staff_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert feb.number in html
    assert "$2,170,000,000.00" in html  # total of both lines
    assert "Balance" in html  # credited after the end moved to Feb 20th
    assert staff_client.get(reverse("billing:invoice_print", args=[999999])).status_code == 404


def test_revenue_page(staff_client, billed):
    url = reverse("billing:revenue")
    page = staff_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html
    assert billed.tenant.name in html
    assert "run-rate" in html
    # Inside the operator layout: its header with logout, the title once, a chart in the
    # page's ink (dark mode), money on the axis as the pages write it.
    assert "Landlord operator" in html
    assert "logout" in html
    assert html.count("<h1") == 1
    assert "currentColor" in html
    assert "Django administration" not in html
