"""Operator journeys in a real browser at 1440 px on the full-scale demo (`seed_demo --scale 1`).

- find each kind of inbox item on the dashboard and follow it to where it is acted on; act on
  the lease request (approve), the open incident (resolve) and the maintenance deferral
  (grant) that are there;
- answer "how much revenue ends if we take campus 1's Hopper (H100) nodes back on D" on the
  revenue-at-risk page, and open the reclaim decision it prefills;
- approve a reclaim through its confirmation page (money effect first, then the notices).

Screenshots of each step go to `artifacts/screenshots/journey-*.png` (CI keeps `artifacts/`).

Seeding once, at full scale: `seed_demo --scale 1` writes 30,000 nodes and 33,651 allocations
and took 24 s on PostgreSQL on a 2-core machine shared with other work (bench/bench_pages.py
prints it on every run), against a CI run of about 9 minutes: affordable once per run, not per
test. So the demo is seeded once for this module, committed to the test database, served by
one live server thread, and emptied (`flush`) when the module ends, as a transactional test
would be; the module runs last (tests/browser/conftest.py), after the tests that need what
migrations load. The journeys never use the per-test `live_server`, whose flush after each
test would delete the demo. Each journey acts on different rows, so their order does not
matter.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.db import connections
from django.test.testcases import LiveServerThread
from django.urls import reverse
from django.utils import timezone

from tests.browser.conftest import SCREENSHOTS
from tests.conftest import CATALOG_MIGRATION

# `django_db` (not transactional): each test reads the committed demo inside its own
# transaction, rolled back after it; the browser's writes go through the live server's
# connection and are committed, which is why each journey acts on different rows.
pytestmark = [pytest.mark.django_db, pytest.mark.browser, pytest.mark.postgres]

SCALE = 1.0  # the full-scale demo; see the module docstring for the seeding time
PASSWORD = "pw-journeys"
WIDTH, HEIGHT = 1440, 900
ERROR_TEXT = ("Server Error", "Traceback", "Page not found", "Forbidden")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The full-scale demo committed to the test database, a lease request on top (the demo
    has none), an operator, and a live server; yields its URL. Emptied afterwards."""
    from django.apps import apps

    from leasing import services
    from leasing.models import Listing, Tenant

    with django_db_blocker.unblock():
        importlib.import_module(CATALOG_MIGRATION).load(apps, None)
        call_command("seed_demo", scale=SCALE, no_progress=True, stdout=io.StringIO())
        listing = Listing.objects.filter(status="published").order_by("pk").first()
        services.lease_request(
            tenant=Tenant.objects.get(slug="helios-labs"),
            listing=listing,
            node_count=2,
            commencement_date=timezone.now().date() + dt.timedelta(days=30),
        )
        apps.get_model("auth", "User").objects.create_superuser(
            "operator", "op@landlord.example", PASSWORD
        )
        server = LiveServerThread("localhost", StaticFilesHandler, connections_override={})
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield f"http://localhost:{server.port}"
        finally:
            server.terminate()
            server.join()
            connections.close_all()
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def op(browser, demo):
    """A logged-in operator's page at 1440 px; `page.shot(name)` saves a full-page screenshot."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{demo}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{demo}/admin/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str):
        path = SCREENSHOTS / f"journey-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    page.base_url = demo
    page.shot = shot
    yield page
    context.close()


def _open(page, path: str) -> None:
    response = page.goto(f"{page.base_url}{path}")
    assert response is not None
    assert response.status == 200, (path, response.status)
    _no_error(page)


def _no_error(page) -> None:
    text = page.content()
    for error in ERROR_TEXT:
        assert error not in text, (page.url, error)


def _inbox_row(page, key: str):
    _open(page, reverse("operator:dashboard"))
    row = page.locator(f"[data-testid=inbox-{key}]")
    assert row.is_visible(), key
    return row


def _run_action(page, changelist: str, pk: int, label: str) -> None:
    _open(page, changelist)
    page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", label=label)
    page.click("button[name=index]")


def test_every_kind_of_inbox_item_is_on_the_dashboard_and_its_link_opens(op):
    from config.inbox import SOURCES

    _open(op, reverse("operator:dashboard"))
    assert op.locator("[data-testid=inbox]").is_visible()
    op.shot("dashboard")
    keys = [
        row.get_attribute("data-testid").removeprefix("inbox-")
        for row in op.locator("[data-testid=inbox] tr[data-testid]").all()
    ]
    assert len(keys) == len(SOURCES)  # a superuser sees every kind
    for key in keys:
        row = _inbox_row(op, key)
        row.locator("td a").first.click()
        op.wait_for_load_state()
        _no_error(op)
        assert "/admin/login/" not in op.url, key


def test_approve_the_lease_request_from_the_inbox(op):
    from leasing.models import Lease

    draft = Lease.objects.get(status="draft")
    row = _inbox_row(op, "lease-requests")
    assert draft.number in row.inner_text()
    row.locator(f"a:has-text('{draft.number}')").click()
    op.wait_for_load_state()
    assert draft.number in op.inner_text("#content")
    op.shot("inbox-lease-request")
    _run_action(op, reverse("admin:leasing_lease_changelist"), draft.pk, "Approve (allocate nodes)")
    op.wait_for_selector("ul.messagelist")
    assert "Approved" in op.inner_text("ul.messagelist")
    op.shot("inbox-lease-request-approved")
    draft.refresh_from_db()
    assert draft.status == "scheduled"


def test_resolve_an_open_incident_from_the_inbox(op):
    from clusters.models import Incident

    row = _inbox_row(op, "incidents")
    hostname = row.locator("ul.inbox-rows a").first.inner_text().split(" · ")[0]
    incident = Incident.objects.get(node__hostname=hostname, status="open")
    row.locator("ul.inbox-rows a").first.click()
    op.wait_for_url(f"**{reverse('operator:fleet-node', args=[hostname])}")
    assert hostname in op.inner_text("#content")
    op.shot("inbox-incident-node")
    _run_action(
        op,
        reverse("admin:clusters_incident_changelist") + "?status__exact=open",
        incident.pk,
        "Resolve selected open incidents…",
    )
    op.fill("textarea[name=resolution], input[name=resolution]", "Reseated the GPU; burn-in OK.")
    op.shot("inbox-incident-resolve")
    op.click("input[name=apply]")
    op.wait_for_selector("ul.messagelist")
    assert "Resolved" in op.inner_text("ul.messagelist")
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolved_by.username == "operator"


def test_grant_a_maintenance_deferral_from_the_inbox(op):
    from leasing.models import MaintenanceDeferral

    asked = MaintenanceDeferral.objects.get(status="requested")
    row = _inbox_row(op, "maintenance")
    row.locator("ul.inbox-rows a").first.click()
    op.wait_for_url(f"**{reverse('admin:leasing_maintenancedeferral_change', args=[asked.pk])}")
    op.shot("inbox-maintenance-deferral")
    _run_action(
        op,
        reverse("admin:leasing_maintenancedeferral_changelist"),
        asked.pk,
        "Grant selected requests (move the window)",
    )
    op.wait_for_selector("ul.messagelist")
    op.shot("inbox-maintenance-granted")
    asked.refresh_from_db()
    asked.window.refresh_from_db()
    assert asked.status == "granted"
    assert asked.window.starts_at == asked.requested_start


def test_follow_the_acceptances_due_to_the_results_upload(op):
    row = _inbox_row(op, "acceptances-due")
    row.locator("td a").first.click()
    op.wait_for_url(f"**{reverse('operator:fleet-handover')}")
    table = op.locator("[data-testid=handover]")
    assert table.is_visible()
    op.shot("inbox-handover")
    table.locator("tbody a").first.click()
    op.wait_for_load_state()
    _no_error(op)
    _open(op, reverse("admin:leasing_acceptancerecord_upload"))
    assert op.locator("form select[name=fmt]").is_visible()
    op.shot("inbox-acceptance-upload")


def test_revenue_at_risk_of_campus_1_hopper_nodes_opens_the_prefilled_decision(op):
    from clusters.models import Cluster
    from reclaim import risk
    from reclaim.models import ReclaimDecision

    cluster = Cluster.objects.get(site__slug="campus-1", accelerator__slug="h100")
    # The demo's Northwind term on campus 1 runs to 120 days from now and needs 90 days'
    # notice: D in between is a date its H100 nodes can still be had back by notice.
    on = timezone.now().date() + dt.timedelta(days=105)
    _open(op, reverse("operator:revenue-at-risk"))
    op.select_option("select[name=kind]", "cluster")
    op.select_option("select[name=cluster]", str(cluster.pk))
    op.fill("input[name=on]", on.isoformat())
    op.click(".risk-form button[type=submit]")
    op.wait_for_selector("[data-testid=rent-ending]")
    _no_error(op)
    op.shot("risk-campus1-h100")
    expected = risk.revenue_at_risk(
        kind="cluster", value=cluster.slug, on=on, today=timezone.now().date()
    )
    assert expected.monthly_rent_ending > Decimal(0)
    shown = op.inner_text("[data-testid=rent-ending]")
    assert f"{expected.monthly_rent_ending:,.0f}" in shown.replace(".00", "")
    lines = op.inner_text("[data-testid=risk-lines]")
    for row in expected.to_take:
        assert row.facts.lease_number in lines  # lease numbers and tenants, not ids
        assert row.facts.tenant in lines
    before = set(ReclaimDecision.objects.values_list("pk", flat=True))
    op.click("[data-testid=open-decision] button")
    op.wait_for_url("**/operator/reclaim/*/")
    _no_error(op)
    op.shot("risk-decision-opened")
    (created,) = ReclaimDecision.objects.exclude(pk__in=before)
    assert created.scope_kind == "cluster"
    assert created.notice_date == expected.notice_date
    assert {line.cluster_id for line in created.lines.all()} == {cluster.pk}


def test_approve_a_reclaim_through_its_confirmation(op):
    from leasing.models import Notice
    from reclaim import services
    from reclaim.models import ReclaimDecision

    # One with something to give notice on, away from the H100 hall the revenue-at-risk
    # journey asks about (either may run first).
    decision = next(
        d
        for d in ReclaimDecision.objects.filter(status="scored")
        .exclude(lines__cluster__slug="c1-h100")
        .order_by("pk")
        if d.notice_date and services.planned_notices(d)
    )
    notices_before = Notice.objects.count()
    _open(op, reverse("operator:reclaim:detail", args=[decision.pk]))
    op.shot("reclaim-detail")
    op.click("[data-testid=approve]")
    op.wait_for_url(f"**{reverse('operator:reclaim:approve', args=[decision.pk])}")
    assert op.locator("[data-testid=approve-rent]").is_visible()
    assert "$" in op.inner_text("[data-testid=approve-rent]")
    assert op.locator("[data-testid=approve-lines] tbody tr").count() >= 1
    op.shot("reclaim-approve-confirmation")
    assert Notice.objects.count() == notices_before  # nothing given before confirming
    op.click("[data-testid=confirm-approve]")
    op.wait_for_url(f"**{reverse('operator:reclaim:detail', args=[decision.pk])}")
    assert "Approved" in op.inner_text("ul.messagelist")
    op.shot("reclaim-approved")
    decision.refresh_from_db()
    assert decision.status == "notice_issued"  # approved, and its notices given
    assert Notice.objects.count() > notices_before
