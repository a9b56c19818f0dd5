"""An operator in a real browser approves a lease request, then gives notice and sees its date."""

import datetime as dt

import pytest
from django.utils import timezone

from leasing import rules, services
from leasing.models import Lease
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def run_action(page, lease: Lease, action_label: str) -> None:
    """Tick `lease` in the lease changelist and run the admin action named `action_label`."""
    page.goto(f"{page.base_url}/admin/leasing/lease/")
    page.check(f"input[name=_selected_action][value='{lease.pk}']")
    page.select_option("select[name=action]", label=action_label)
    page.click("button[name=index]")


def test_operator_approves_a_request_then_gives_notice(operator_page):
    page = operator_page
    cluster = cluster_with_nodes(6)
    today = timezone.now().date()
    listing = published_listing(cluster, earliest_start=today)
    lease = services.lease_request(
        tenant=TenantFactory(name="Northwind AI"),
        listing=listing,
        node_count=4,
        commencement_date=today + dt.timedelta(days=30),
    )
    assert lease.status == "draft"

    run_action(page, lease, "Approve (allocate nodes)")
    page.wait_for_selector("ul.messagelist")
    assert "Approved" in page.inner_text("ul.messagelist")
    page.shot("lease-approved")
    lease.refresh_from_db()
    assert lease.status == "scheduled"
    assert lease.lines.get().allocations.count() == 4

    run_action(page, lease, "Give operator notice…")
    preview = page.inner_text("#content form table")
    expected = rules.quote(lease, rules.notice_date_of(timezone.now(), lease.contract_timezone))
    assert expected.effective_end.strftime("%Y-%m-%d") in preview
    page.shot("operator-notice-preview")
    page.click("input[name=apply]")
    page.wait_for_selector("ul.messagelist")
    page.shot("operator-notice-given")
    notice = lease.notices.get()
    assert notice.given_by == "operator"
    assert notice.effective_end == expected.effective_end
    page.goto(f"{page.base_url}/admin/leasing/notice/{notice.pk}/change/")
    assert expected.effective_end.strftime("%Y") in page.inner_text("#content")
