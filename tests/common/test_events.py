"""Domain events: written with the change, consumed after commit exactly once, failures visible
and retried, lost dispatches caught up by the sweep (`common.events`).

The business case throughout: a lease billed through March gets a 10-day notice on March 5th,
so it now ends on March 16th, inside an invoiced month; billing's consumer must credit the
days after that end as soon as the notice commits, once.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import services as billing
from billing.models import CreditNote
from common import events, tasks
from common.exceptions import InvalidInput
from common.models import DomainEvent, EventDelivery
from leasing import notices as leasing_notices
from leasing.choices import Party
from leasing.models import Tenant
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import TenantFactory, UserFactory
from tests.processes import run_together
from webhooks import services as webhooks
from webhooks.models import WebhookDelivery

UTC = dt.UTC
NOTICE_AT = dt.datetime(2026, 3, 5, 12, tzinfo=UTC)
# March billed 1.25e9; due now 15/31 of it (604,838,709.677… → .68).
CREDIT = Decimal("1250000000.00") - Decimal("604838709.68")
T0 = dt.datetime(2026, 3, 1, tzinfo=UTC)


def invoiced_lease():
    """A lease with 10 notice days, invoiced through March as the daily run leaves it."""
    lease, _ = lease_with_lines(notice_days=10, with_nodes=True)
    billing.billing_run(now=dt.datetime(2026, 3, 1, 0, 10, tzinfo=UTC))
    return lease


def give_notice(lease):
    return leasing_notices.notice_give(lease=lease, party=Party.TENANT, now=NOTICE_AT)


def billing_delivery(lease) -> EventDelivery:
    return EventDelivery.objects.get(
        consumer="billing.credit_notes", event__kind="notice.received", event__subject_id=lease.pk
    )


def emit(kind="test.happened", **payload) -> DomainEvent | None:
    with transaction.atomic():
        return events.emit(kind, subject="thing", subject_id=1, payload=payload, occurred_at=T0)


# --- the credit note after a notice, exactly once --------------------------------------------


@pytest.mark.django_db
def test_a_notice_inside_an_invoiced_month_is_credited_as_soon_as_it_commits(
    django_capture_on_commit_callbacks,
):
    lease = invoiced_lease()
    with django_capture_on_commit_callbacks(execute=True):
        give_notice(lease)
    (note,) = CreditNote.objects.filter(lease=lease)
    assert note.total == CREDIT
    assert note.invoice.period == dt.date(2026, 3, 1)
    # Issued as of the notice (the event's instant), not the wall clock, and not by a run.
    assert (note.issued_at, note.billing_run) == (NOTICE_AT, None)
    delivery = billing_delivery(lease)
    assert (delivery.status, delivery.attempts) == ("done", 1)


@pytest.mark.django_db
def test_a_replayed_or_duplicated_event_credits_once(
    django_capture_on_commit_callbacks, event_consumer
):
    ran = event_consumer("notice.received")
    lease = invoiced_lease()
    with django_capture_on_commit_callbacks(execute=True):
        give_notice(lease)
    delivery = billing_delivery(lease)
    mine = delivery.event.deliveries.get(consumer="tests.recorder")
    assert (delivery.status, mine.status, len(ran)) == ("done", "done", 1)
    # The same deliveries again: a redelivered task, a sweep racing the first dispatch, a task
    # published twice. Nothing runs.
    assert events.deliver(delivery.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        events.dispatch([delivery.pk, mine.pk, delivery.pk])
    assert tasks.deliver_events.apply(args=([delivery.pk, mine.pk],)).get() == {"skipped": 2}
    assert len(ran) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    # The event emitted twice (a producer that retried): its copy is consumed too, and billing
    # finds nothing left to credit.
    event = delivery.event
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        twin = events.emit(
            event.kind,
            subject=event.subject,
            subject_id=event.subject_id,
            payload=event.payload,
            occurred_at=event.occurred_at,
        )
    assert twin.deliveries.get(consumer="billing.credit_notes").status == "done"
    assert CreditNote.objects.filter(lease=lease).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("action", "runs"),
    [("deliver", 1), ("deliver_unlocked", 2)],
    ids=["locked", "control-without-the-lock"],
)
def test_two_processes_consuming_one_delivery_run_it_once(monkeypatch, action, runs):
    """Two interpreters consume the same delivery at the same instant. With the row lock one
    runs it and the other finds it held; the control, reading the row without the lock, runs
    the consumer twice (billing's own lease lock still keeps that to one credit note)."""
    lease = invoiced_lease()
    monkeypatch.setattr(events, "dispatch", lambda ids, now=None: None)  # left for the workers
    give_notice(lease)
    delivery = billing_delivery(lease)
    results = run_together("tests.common.event_workers", [[action, str(delivery.pk)]] * 2)
    assert sum(r["ran"] for r in results) == runs
    delivery.refresh_from_db()
    assert delivery.status == "done"
    if action == "deliver":
        assert sorted(str(r["status"]) for r in results) == ["None", "done"]
        assert delivery.attempts == 1
    assert [n.total for n in CreditNote.objects.filter(lease=lease)] == [CREDIT]


@pytest.mark.django_db
def test_the_credit_note_reaches_the_tenant_by_webhook(
    settings, django_capture_on_commit_callbacks
):
    """Two consumers in a row: the notice's credit note is itself an event, announced to the
    tenant's endpoint (HTTP sending left to the webhook sweep here)."""
    settings.WEBHOOK_DISPATCH_ON_EVENT = False
    lease = invoiced_lease()
    endpoint = webhooks.webhook_endpoint_create(
        tenant=lease.tenant, url="https://example.com/hook", event_types=["credit_note.issued"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        give_notice(lease)
    note = CreditNote.objects.get(lease=lease)
    sent = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (sent.event_type, sent.event_id) == ("credit_note.issued", f"evt_cn_{note.pk}")
    assert sent.payload["data"]["total"] == f"{CREDIT:.2f}"


# --- failures: recorded, retried with backoff, visible, retried by an operator ---------------


@pytest.mark.django_db
def test_a_failing_consumer_rolls_back_and_is_retried_with_backoff(event_consumer):
    def boom(event):
        TenantFactory(slug="written-then-undone")
        raise RuntimeError("ledger offline")

    event_consumer("test.happened", boom)
    delivery = emit().deliveries.get()
    assert events.deliver(delivery.pk, now=T0) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.last_error.rstrip().endswith("RuntimeError: ledger offline")
    assert "in boom" in delivery.last_error  # the traceback's tail, for the operator
    assert delivery.next_attempt_at == T0 + dt.timedelta(seconds=30)
    assert not Tenant.objects.filter(slug="written-then-undone").exists()
    # The sweep leaves it alone until its backoff is over, then runs it again.
    assert events.sweep(now=T0 + dt.timedelta(seconds=29)) == []
    t1 = T0 + dt.timedelta(seconds=30)
    assert events.sweep(now=t1) == [delivery.pk]
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.next_attempt_at) == (2, t1 + dt.timedelta(minutes=1))
    # Backoff doubles up to its cap; after MAX_ATTEMPTS the delivery gives up.
    now = t1
    while delivery.status == "pending":
        now = delivery.next_attempt_at
        assert events.sweep(now=now) == [delivery.pk]
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", events.MAX_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert events.backoff(7) < events.backoff(8) == events.BACKOFF_CAP
    assert events.sweep(now=now + dt.timedelta(days=1)) == []


@pytest.mark.django_db
def test_a_refusal_fails_at_once_and_an_unknown_consumer_fails_visibly(event_consumer):
    def refuse(event):
        raise InvalidInput("not for this lease")

    event_consumer("test.happened", refuse)
    event = emit()
    delivery = event.deliveries.get()
    assert events.deliver(delivery.pk, now=T0) == "failed"  # a domain refusal is not retried
    stray = EventDelivery.objects.create(event=event, consumer="gone.consumer")
    assert events.deliver(stray.pk, now=T0) == "failed"
    stray.refresh_from_db()
    assert "no event consumer registered as 'gone.consumer'" in stray.last_error


@pytest.fixture
def failed_delivery(event_consumer):
    state = {"down": True}

    def flaky(event):
        if state["down"]:
            raise RuntimeError("ledger offline")

    event_consumer("test.happened", flaky)
    delivery = emit().deliveries.get()
    for _ in range(events.MAX_ATTEMPTS):
        events.deliver(delivery.pk, now=T0)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    return delivery, state


def admin_user(*codenames):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.mark.django_db
def test_operators_see_failed_deliveries_and_retry_them(
    client, failed_delivery, django_capture_on_commit_callbacks
):
    delivery, state = failed_delivery
    operator = admin_user("view_eventdelivery", "change_eventdelivery")
    client.force_login(operator)
    url = reverse("admin:common_eventdelivery_changelist")
    page = client.get(url, {"attention": "failed", "consumer__exact": "tests.recorder"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [delivery]
    assert b"RuntimeError: ledger offline" in page.content
    other_kind = client.get(url, {"attention": "failed", "event__kind__exact": "other.kind"})
    assert list(other_kind.context["cl"].result_list) == []
    state["down"] = False  # the cause is fixed
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "retry", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("done", 1)
    assert delivery.retried_by == operator
    assert delivery.retried_at is not None
    # Done is done: a second retry is refused with its reason.
    with pytest.raises(events.DeliveryDone):
        events.delivery_retry(delivery=delivery, actor=operator)


@pytest.mark.django_db
def test_a_viewer_cannot_retry(client, failed_delivery):
    delivery, _ = failed_delivery
    client.force_login(admin_user("view_eventdelivery"))
    url = reverse("admin:common_eventdelivery_changelist")
    page = client.get(url)
    assert page.status_code == 200
    assert b"ledger offline" in page.content
    assert b"Retry now" not in page.content
    client.post(url, {"action": "retry", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.retried_by) == ("failed", None)


@pytest.mark.django_db
def test_stuck_deliveries_are_listed_for_operators(client, event_consumer):
    event_consumer("test.happened")
    stuck = emit().deliveries.get()  # in a test transaction: never dispatched
    DomainEvent.objects.filter(pk=stuck.event_id).update(
        created_at=timezone.now() - events.DISPATCH_GRACE - dt.timedelta(minutes=1)
    )
    fresh = emit().deliveries.get()
    client.force_login(admin_user("view_eventdelivery"))
    page = client.get(reverse("admin:common_eventdelivery_changelist"), {"attention": "stuck"})
    assert list(page.context["cl"].result_list) == [stuck]
    assert fresh.status == "pending"


# --- the sweep catches up lost dispatches -----------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_consumes_a_delivery_whose_dispatch_was_lost(
    django_capture_on_commit_callbacks,
):
    lease = invoiced_lease()
    # The notice commits but its after-commit dispatch never runs (a crash, a broker outage).
    with django_capture_on_commit_callbacks(execute=False):
        give_notice(lease)
    delivery = billing_delivery(lease)
    assert delivery.status == "pending"
    assert not CreditNote.objects.filter(lease=lease).exists()
    # Not overdue yet: its dispatch may still be in the queue.
    assert events.sweep(now=timezone.now() + dt.timedelta(minutes=1)) == []
    later = timezone.now() + events.DISPATCH_GRACE + dt.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_events.apply(kwargs={"now": later.isoformat()}).get() >= 1
    delivery.refresh_from_db()
    assert delivery.status == "done"
    assert [n.total for n in CreditNote.objects.filter(lease=lease)] == [CREDIT]


def test_the_sweep_runs_every_minute(settings):
    from config.celery import app

    assert {"common.deliver_events", "common.sweep_events"} <= set(app.tasks)
    entry = settings.CELERY_BEAT_SCHEDULE["domain-events"]
    assert entry["task"] == "common.sweep_events"
    assert entry["schedule"].minute == set(range(60))


# --- producing ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # autocommit: no test transaction around the call
def test_emit_refuses_to_run_outside_a_transaction_and_naive_instants(event_consumer):
    event_consumer("test.happened")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events.emit("test.happened", subject="thing", subject_id=1, payload={}, occurred_at=T0)
    with pytest.raises(InvalidInput), transaction.atomic():
        events.emit(
            "test.happened",
            subject="thing",
            subject_id=1,
            payload={},
            occurred_at=dt.datetime(2026, 3, 1),  # naive on purpose
        )
    assert not DomainEvent.objects.exists()


@pytest.mark.django_db
def test_events_nobody_wants_are_not_written_and_a_batch_costs_constant_queries(event_consumer):
    def only_even(batch):
        list(Tenant.objects.all()[:1])  # a filter may query: once per batch
        return [e for e in batch if e.subject_id % 2 == 0]

    assert emit("nobody.listens") is None
    events.register("test.happened", "tests.even", lambda e: None, wants=only_even)

    def batch(size):
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            written = events.emit_many(
                events.Event("test.happened", "thing", i, {"i": i}, T0) for i in range(size)
            )
        return written, len(queries)

    small, few = batch(4)
    large, many = batch(100)
    assert (len(small), len(large)) == (2, 50)
    assert many == few
    assert EventDelivery.objects.filter(consumer="tests.even").count() == 52
    assert not DomainEvent.objects.filter(kind="nobody.listens").exists()
