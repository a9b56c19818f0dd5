"""Operator journeys in a real browser at 1440 px on the full-scale demo (`seed_demo --scale 1`).

- find each kind of inbox item on the dashboard, follow it to where it is acted on, act there
  through the UI and check what changed, in the database and on the dashboard: approve the
  lease request; give notice on the lease whose last useful notice date is near (through its
  confirmation, money first); upload nccl-tests results for nodes due to be accepted; resolve
  an open incident; grant the maintenance deferral; record a payment of the overdue invoice
  (through its confirmation); void the invoice whose dunning escalated (waived); retry the
  failed event delivery and the failed webhook delivery;
- every admin list's key columns end inside 1440 px, measured on the full-scale demo's lists;
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

The kinds of work the demo has none of are added on top of it once (`_work_the_demo_lacks`),
through the services wherever one makes the state: a lease request; an operator deal whose last
useful notice date is in 8 days; a tenant that never paid its January 2025 invoice, billed and
reminded on the days the jobs ran, so its dunning escalated; and, on that invoice going
overdue, a collections consumer of domain events and the tenant's webhook receiver that failed
until both gave up, and have been mended since.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import re
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
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
# nccl-tests `all_reduce_perf` output of a two-node run (its hosts renamed to the nodes accepted).
NCCL_RUN = Path(__file__).parents[1] / "perfmodel" / "data" / "nccl_all_reduce_perf_2x8_h100.txt"
COLLECTIONS = "journeys.collections"  # the failing consumer of domain events (see below)
COLLECTIONS_ERROR = "collections agency API unreachable"


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The full-scale demo committed to the test database, the work it lacks on top, an
    operator, and a live server; yields its URL. Emptied afterwards."""
    from django.apps import apps

    with django_db_blocker.unblock(), ExitStack() as stack:
        importlib.import_module(CATALOG_MIGRATION).load(apps, None)
        call_command("seed_demo", scale=SCALE, no_progress=True, stdout=io.StringIO())
        _work_the_demo_lacks(stack)
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


def _work_the_demo_lacks(stack: ExitStack) -> None:
    """One item of each kind of inbox work the demo has none of (see the module docstring).
    What must outlive this call (the webhook receiver, the settings that let it be reached on
    127.0.0.1, the collections consumer) is undone by `stack` when the module ends."""
    from billing import dunning
    from billing import services as billing
    from clusters.models import Cluster
    from common import events
    from common.models import EventDelivery
    from leasing import services
    from leasing.choices import LeaseStatus
    from leasing.models import Listing, Tenant
    from tests.factories.leasing import LeaseFactory, LeaseLineFactory
    from tests.webhooks.test_webhooks import Receiver
    from webhooks import services as webhooks
    from webhooks.models import WebhookDelivery

    now = timezone.now()
    today = now.date()
    services.lease_request(
        tenant=Tenant.objects.get(slug="helios-labs"),
        listing=Listing.objects.filter(status="published").earliest("pk"),
        node_count=2,
        commencement_date=today + dt.timedelta(days=30),
    )
    # A deal on campus 2's GB200 hall commencing in 10 days (not yet due for hand-over): its
    # term ends in 100 days and needs 90 days' notice, so its last useful notice date is in 8.
    gb200 = Cluster.objects.get(slug="c2-gb200")
    services.lease_approve(
        lease=services.lease_create(
            tenant=Tenant.objects.get(slug="northwind-ai"),
            lines=[
                services.LineSpec(cluster=gb200, node_count=8, monthly_rate=Decimal("2400000.00"))
            ],
            commencement_date=today + dt.timedelta(days=10),
            term_days=90,
            notice_days=90,
        )
    )
    # A tenant that never paid for January 2025: its past lease written as the factories do,
    # billed and reminded by the jobs on the days they ran (the 30-day reminder escalates).
    debtor = Tenant.objects.create(
        name="Quasar Robotics", slug="quasar-robotics", billing_email="ap@quasar.example"
    )
    past = LeaseFactory(
        tenant=debtor,
        number="L-2025-0001",
        status=LeaseStatus.EXPIRED,
        commencement_date=dt.date(2025, 1, 1),
        term_days=31,
    )
    LeaseLineFactory(lease=past, cluster=gb200, node_count=4, monthly_rate=Decimal("1200000.00"))
    billing.billing_run(now=dt.datetime(2025, 1, 2, 0, 10, tzinfo=dt.UTC))
    dunning.send_reminders(now=dt.datetime(2025, 3, 15, 9, tzinfo=dt.UTC))
    # Its invoice going overdue is announced to its webhook receiver, which answers 503 until
    # the deliveries give up (then 200), and consumed by a collections export whose API is down
    # until it gives up too (then back).
    receiver = Receiver(statuses=[503] * webhooks.MAX_ATTEMPTS + [200])
    stack.callback(receiver.close)
    stack.enter_context(override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True))
    webhooks.webhook_endpoint_create(
        tenant=debtor, url=receiver.url, event_types=["invoice.overdue"]
    )
    patch = stack.enter_context(pytest.MonkeyPatch.context())
    patch.setattr(events, "_consumers", dict(events._consumers))
    collections = {"down": True}

    def export(event) -> None:
        if collections["down"]:
            raise RuntimeError(COLLECTIONS_ERROR)

    events.register("invoice.overdue", COLLECTIONS, export)
    billing.mark_overdue(now=now)
    hook = WebhookDelivery.objects.get(endpoint__tenant=debtor)
    job = EventDelivery.objects.get(consumer=COLLECTIONS)
    at = now  # each attempt once the backoff after the one before has passed
    for attempt in range(1, max(webhooks.MAX_ATTEMPTS, events.MAX_ATTEMPTS) + 1):
        at += webhooks.backoff(attempt)
        webhooks.delivery_attempt(delivery_id=hook.pk, now=at)
        events.deliver(job.pk, now=at)
    hook.refresh_from_db()
    job.refresh_from_db()
    assert (hook.status, job.status) == ("failed", "failed")
    collections["down"] = False


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


def _count(row) -> int:
    """How many items the inbox row counts."""
    return int(row.locator("td.num").inner_text().replace(",", ""))


def _dollars(text: str) -> Decimal:
    """The first dollar amount in `text` (money is shown as `$1,234.56`)."""
    found = re.search(r"\$([\d,]+\.\d\d)", text)
    assert found, text
    return Decimal(found.group(1).replace(",", ""))


def _choose_action(page, pk: int, label: str) -> None:
    """Run the admin action `label` on row `pk` of the changelist shown."""
    page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", label=label)
    page.click("button[name=index]")


def _run_action(page, changelist: str, pk: int, label: str) -> None:
    _open(page, changelist)
    _choose_action(page, pk, label)


def _message(page) -> str:
    """The admin's messages after an action."""
    page.wait_for_selector("ul.messagelist")
    return page.inner_text("ul.messagelist")


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
    assert "Approved" in _message(op)
    op.shot("inbox-lease-request-approved")
    draft.refresh_from_db()
    assert draft.status == "scheduled"


def test_give_notice_on_a_lease_before_its_last_useful_notice_date_from_the_inbox(op):
    from leasing.models import Lease, Notice

    row = _inbox_row(op, "notice-deadlines")
    due = _count(row)
    link = row.locator("ul.inbox-rows a").first
    lease = Lease.objects.get(number=link.inner_text().split(" · ")[0])
    link.click()
    op.wait_for_url(f"**{reverse('admin:leasing_lease_change', args=[lease.pk])}")
    assert lease.number in op.inner_text("#content")
    op.shot("inbox-notice-lease")
    _run_action(
        op,
        reverse("admin:leasing_lease_changelist") + f"?q={lease.number}",
        lease.pk,
        "Give operator notice…",
    )
    # The confirmation: what the notice takes back and the money it costs, before anything.
    assert lease.number in op.inner_text("[data-testid=notice-effects]")
    assert _dollars(op.inner_text("[data-testid=notice-summary]")) > 0  # the rent forgone
    op.fill("input[name=reason]", "The hall is needed for a larger deal.")
    op.shot("inbox-notice-confirmation")
    assert not Notice.objects.filter(lease=lease).exists()
    op.click("[data-testid=confirm-notice]")
    assert f"Operator notice given: Operator's notice on {lease.number}" in _message(op)
    op.shot("inbox-notice-given")
    notice = Notice.objects.get(lease=lease)
    assert (notice.given_by, notice.given_by_user.username) == ("operator", "operator")
    assert notice.reason == "The hall is needed for a larger deal."
    assert notice.effective_end < lease.term_end  # it ends before the term: not moot
    lease.refresh_from_db()
    assert lease.effective_end == notice.effective_end  # (still scheduled: it commences later)
    assert _count(_inbox_row(op, "notice-deadlines")) == due - 1


def test_upload_acceptance_results_for_the_nodes_due_from_the_inbox(op, tmp_path):
    from leasing.models import AcceptanceRecord, Allocation

    row = _inbox_row(op, "acceptances-due")
    due = _count(row)
    number = row.locator("ul.inbox-rows a").first.inner_text().split(" · ")[0]
    row.locator("td a").first.click()
    op.wait_for_url(f"**{reverse('operator:fleet-handover')}")
    op.fill("input[name=lease]", number)
    op.click("button:has-text('Filter')")
    table = op.locator("[data-testid=handover]")
    assert number in table.inner_text()
    op.shot("inbox-handover")
    table.locator(f"tbody a:has-text('{number}')").first.click()
    op.wait_for_load_state()
    op.click("a:has-text('Upload results')")
    op.wait_for_url(f"**{reverse('admin:leasing_acceptancerecord_upload')}")
    # Two nodes of the lease still to accept (none under an incident another journey resolves),
    # with the output of the all-reduce run on them.
    nodes = list(
        Allocation.objects.filter(line__lease__number=number, accepted_at__isnull=True)
        .exclude(node__incidents__status="open")
        .order_by("node__hostname")
        .values_list("node__hostname", flat=True)[:2]
    )
    results = tmp_path / "all_reduce_perf.txt"
    run = NCCL_RUN.read_text().replace("node-a01", nodes[0]).replace("node-a02", nodes[1])
    results.write_text(run)
    op.set_input_files("input[name=results]", str(results))
    op.select_option("select[name=fmt]", "nccl")
    op.fill("input[name=lease]", number)
    op.fill("input[name=batch]", "journey-rack-1")
    op.click("button[name=preview]")
    preview = op.inner_text("[data-testid=acceptance-preview]")
    assert all(host in preview for host in nodes)
    assert "refused" not in preview
    assert "FAIL" not in preview
    op.shot("inbox-acceptance-preview")
    assert not AcceptanceRecord.objects.filter(batch="journey-rack-1").exists()
    op.click("[data-testid=confirm]")
    assert "2 acceptance records signed: 2 passed, 0 failed." in _message(op)
    op.shot("inbox-acceptance-recorded")
    records = AcceptanceRecord.objects.filter(batch="journey-rack-1").select_related(
        "node", "signed_by"
    )
    assert sorted(r.node.hostname for r in records) == nodes
    assert {(r.passed, r.source, r.signed_by.username) for r in records} == {
        (True, "nccl-tests", "operator")
    }
    accepted = Allocation.objects.filter(
        line__lease__number=number, node__hostname__in=nodes, accepted_at__isnull=False
    )
    assert accepted.count() == 2
    assert _count(_inbox_row(op, "acceptances-due")) == due - 2


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
    assert "Resolved" in _message(op)
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
    _message(op)
    op.shot("inbox-maintenance-granted")
    asked.refresh_from_db()
    asked.window.refresh_from_db()
    assert asked.status == "granted"
    assert asked.window.starts_at == asked.requested_start


def test_record_a_payment_of_the_overdue_invoice_from_the_inbox(op):
    from billing import payments
    from billing.models import Invoice, Payment

    # The demo's own overdue invoice (the other is the escalated one, voided by another journey).
    invoice = Invoice.objects.get(is_overdue=True, tenant__slug="helios-labs")
    owed = payments.balances([invoice])[invoice.pk]
    row = _inbox_row(op, "overdue")
    overdue, owed_in_all = _count(row), _dollars(row.locator("span.muted").inner_text())
    row.locator("td a").first.click()
    op.wait_for_url("**/admin/billing/invoice/?*is_overdue__exact=1*")
    assert invoice.number in op.inner_text("#result_list")
    op.shot("inbox-overdue-invoices")
    _open(op, reverse("admin:billing_payment_changelist"))
    op.click("a.addlink")
    op.wait_for_url(f"**{reverse('admin:billing_payment_add')}")
    reference = f"WIRE-{invoice.number}-LATE"
    op.select_option("select[name=tenant]", str(invoice.tenant_id))
    op.fill("input[name=amount]", str(owed))
    op.fill("input[name=value_date]", timezone.now().date().isoformat())
    op.fill("input[name=reference]", reference)
    op.select_option("select[name=method]", "wire")
    op.select_option("select[name=invoices]", str(invoice.pk))
    op.click("input[name=_save]")
    # The confirmation: where the money goes, before anything is recorded.
    plan = op.inner_text("[data-testid=payment-plan]")
    assert invoice.number in plan
    assert "(paid)" in plan
    assert _dollars(op.inner_text("[data-testid=payment-summary]")) == owed
    op.shot("inbox-overdue-payment-confirmation")
    assert not Payment.objects.filter(reference=reference).exists()
    op.click("[data-testid=confirm-payment]")
    _message(op)
    op.shot("inbox-overdue-payment-recorded")
    payment = Payment.objects.get(reference=reference)
    assert (payment.amount, payment.recorded_by.username) == (owed, "operator")
    assert [(a.invoice_id, a.amount) for a in payment.applications.all()] == [(invoice.pk, owed)]
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert payments.balances([invoice])[invoice.pk] == 0
    row = _inbox_row(op, "overdue")
    assert _count(row) == overdue - 1
    detail = row.locator("span.muted")  # none once nothing is overdue
    assert (_dollars(detail.inner_text()) if detail.count() else 0) == owed_in_all - owed


def test_void_the_invoice_whose_dunning_escalated_from_the_inbox(op):
    from billing import dunning

    row = _inbox_row(op, "dunning-escalations")
    escalated = _count(row)
    link = row.locator("ul.inbox-rows a").first
    (reminder,) = dunning.escalations().filter(
        invoice__tenant__name=link.inner_text().split(" · ")[0]
    )
    invoice = reminder.invoice
    link.click()  # the tenant's invoices
    op.wait_for_url(f"**?tenant__id__exact={invoice.tenant_id}")
    assert invoice.number in op.inner_text("#result_list")
    op.shot("inbox-escalated-invoices")
    _choose_action(op, invoice.pk, "Void selected issued invoices…")
    # The confirmation: what voiding takes off what the tenant owes.
    assert invoice.number in op.inner_text("[data-testid=void-effects]")
    assert _dollars(op.inner_text("[data-testid=void-summary]")) == invoice.total
    op.fill("textarea[name=reason]", "Tenant insolvent; written off after legal review.")
    op.check("input[name=resolution][value=waive]")
    op.shot("inbox-escalated-void-confirmation")
    op.click("[data-testid=confirm-void]")
    assert "Voided" in _message(op)
    op.shot("inbox-escalated-voided")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.void_resolution) == ("void", "waive")
    assert invoice.voided_by.username == "operator"
    assert not dunning.escalations().filter(invoice=invoice).exists()
    assert _count(_inbox_row(op, "dunning-escalations")) == escalated - 1


def _act_on_the_list(op, key: str, pk: int, label: str, *, shows: str) -> tuple[int, str]:
    """Follow inbox item `key` to its list, which shows `shows`, and run the action `label` on
    row `pk` there; returns the item's count before and the admin's messages after."""
    row = _inbox_row(op, key)
    count = _count(row)
    link = row.locator("td a").first
    href = link.get_attribute("href")
    link.click()
    op.wait_for_url(f"**{href}")
    assert shows in op.inner_text("#result_list")
    op.shot(f"inbox-{key}")
    _choose_action(op, pk, label)
    message = _message(op)
    op.shot(f"inbox-{key}-retried")
    return count, message


def test_retry_the_failed_event_delivery_from_the_inbox(op):
    from common.models import EventDelivery

    failed = EventDelivery.objects.get(status="failed", consumer=COLLECTIONS)
    # The list says why it failed.
    count, message = _act_on_the_list(
        op, "failed-events", failed.pk, "Retry now (records who)", shows=COLLECTIONS_ERROR
    )
    assert "Dispatched again" in message
    failed.refresh_from_db()
    # The cause was mended: consumed now, with who asked for it.
    assert (failed.status, failed.attempts) == ("done", 1)
    assert failed.retried_by.username == "operator"
    assert _count(_inbox_row(op, "failed-events")) == count - 1


def test_retry_the_failed_webhook_delivery_from_the_inbox(op):
    from django.contrib.admin.models import LogEntry

    from webhooks.models import WebhookDelivery
    from webhooks.tasks import deliver_due_webhooks

    failed = WebhookDelivery.objects.get(status="failed")
    count, message = _act_on_the_list(
        op,
        "failed-webhooks",
        failed.pk,
        "Retry the selected deliveries at the next sweep",
        shows=failed.event_id,
    )
    assert "Queued for the next sweep." in message
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)
    (entry,) = LogEntry.objects.filter(
        content_type__model="webhookdelivery",
        object_id=str(failed.pk),
        change_message="Queued for retry",
    )
    assert entry.user.username == "operator"
    assert _count(_inbox_row(op, "failed-webhooks")) == count - 1
    # The next sweep sends it, and the mended receiver takes it.
    deliver_due_webhooks()
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_status_code) == ("succeeded", 1, 200)


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


# What `test_every_admin_list_shows_its_columns_at_1440_px` measures: where each column header
# of the changelist (`column-<name>`) ends.
MEASURE = """() => {
  const out = [];
  for (const th of document.querySelectorAll('#result_list thead th')) {
    const name = [...th.classList].find(c => c.startsWith('column-'));
    if (name) out.push([name.slice(7), Math.round(th.getBoundingClientRect().right)]);
  }
  return out;
}"""


def test_every_admin_list_shows_its_columns_at_1440_px(op):
    """For each registered ModelAdmin whose changelist has rows, every column header of its
    `list_display` (the columns that matter, first) ends inside the 1440 px viewport, measured
    on the full-scale demo's lists (the widest numbers, names and hostnames there are): nothing
    an operator needs is pushed off the right edge."""
    from django.contrib import admin

    measured, overflowing, empty = [], {}, []
    for model in admin.site._registry:
        if not model._default_manager.exists():
            empty.append(model._meta.label)  # no rows, so no columns to measure: said below
            continue
        meta = model._meta
        _open(op, reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        columns = dict(op.evaluate(MEASURE))
        assert columns, f"{meta.label}: no list shown"
        measured.append(meta.label)
        late = {name: right for name, right in columns.items() if right > WIDTH}
        if late:
            overflowing[meta.label] = late
            op.shot(f"admin-list-overflow-{meta.label}")
    print(f"\n{len(measured)} admin lists measured; empty in the demo, not measured: {empty}")
    assert len(measured) >= 25, measured
    assert overflowing == {}, "\n".join(f"{k}: {v}" for k, v in overflowing.items())
