"""An operator opens an invoice from the admin, follows its print link, and prints it to PDF."""

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice
from billing.services import billing_run
from common.money import format_money
from leasing import services
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_invoice_printable_page_shows_the_lines_and_prints(operator_page):
    page = operator_page
    cluster = cluster_with_nodes(4)
    today = timezone.now().date()
    listing = published_listing(
        cluster, earliest_start=today, monthly_rate_per_node=Decimal("312500000.00")
    )
    lease = services.lease_request(
        tenant=TenantFactory(name="Northwind AI"),
        listing=listing,
        node_count=4,
        commencement_date=today,
    )
    services.lease_approve(lease=lease)
    billing_run()
    # This month's partial invoice (the next month's may already be issued in advance).
    invoice = Invoice.objects.filter(lease=lease).order_by("period_start").first()
    assert invoice.number, "issued invoices carry their number"

    page.goto(f"{page.base_url}/admin/billing/invoice/{invoice.pk}/change/")
    with page.context.expect_page() as opened:
        page.click('a[target=_blank]:text-is("print")')
    printable = opened.value
    printable.wait_for_load_state()
    text = printable.inner_text("body")
    assert invoice.number in text
    assert "Northwind AI" in text
    assert format_money(invoice.total) in text
    assert lease.number in text
    printable.screenshot(path=str(SCREENSHOTS / "invoice-print.png"), full_page=True)
    pdf = printable.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    (SCREENSHOTS / "invoice.pdf").write_bytes(pdf)
