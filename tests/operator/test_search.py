"""The operators' search box (config/search.py): on every page, finds by number or name,
opens an exact hit, shows each kind only to who may view it."""

import datetime as dt

import pytest
from django.urls import reverse

from billing import services as billing
from billing.models import Invoice
from tests.factories.billing import lease_with_lines
from tests.operator.test_permissions import staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def billed():
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 1, 1), with_nodes=True)
    billing.billing_run(now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    return lease


def test_an_exact_number_or_hostname_opens_the_object(client, billed):
    client.force_login(staff("viewer-1", "viewer"))
    invoice = Invoice.objects.get(lease=billed, number__isnull=False, period=dt.date(2026, 1, 1))
    opened = client.get(reverse("operator:search"), {"q": invoice.number})
    assert opened.status_code == 302
    assert opened["Location"] == reverse("admin:billing_invoice_change", args=[invoice.pk])
    node = billed.lines.first().cluster.nodes.first()
    opened = client.get(reverse("operator:search"), {"q": node.hostname.upper()})
    assert opened["Location"] == reverse("admin:clusters_node_change", args=[node.pk])


def test_a_partial_query_lists_matches_of_each_kind(client, billed):
    client.force_login(staff("viewer-2", "viewer"))
    page = client.get(reverse("operator:search"), {"q": billed.tenant.name[:4]})
    html = page.content.decode()
    assert page.status_code == 200
    assert billed.tenant.name in html
    assert billed.number in html


def test_kinds_the_user_may_not_view_stay_hidden(client, billed):
    client.force_login(staff("capacity-1", "capacity"))  # no billing permissions
    invoice = Invoice.objects.filter(lease=billed).exclude(number=None).first()
    page = client.get(reverse("operator:search"), {"q": invoice.number})
    assert page.status_code == 200
    assert "Nothing matches" in page.content.decode()
    assert reverse("admin:billing_invoice_change", args=[invoice.pk]) not in page.content.decode()


def test_the_box_is_on_admin_and_operator_pages(client):
    client.force_login(staff("viewer-3", "viewer"))
    for url in (reverse("admin:index"), reverse("operator:dashboard")):
        html = client.get(url).content.decode()
        assert 'class="operator-search"' in html, url
