"""A real Celery worker on Redis consumes a notice's event and issues its credit note within
seconds, once, even when the dispatch is published twice.

The worker (`celery -A config worker`, `tests/celery_worker.py`) listens on Redis database 7
and on its own queue (`EVENTS_QUEUE`), so it can neither take the messages of another broker
test (the billing worker test uses database 5 and the default queue) nor lose its own to one.
This process publishes the way production does: the notice commits, and its deliveries are
dispatched after commit to `common.deliver_events` on that queue.
"""

import tempfile
import time

import pytest
import redis

from billing.models import CreditNote
from common import events
from tests.celery_worker import Worker, wait_for

from .test_events import CREDIT, NOTICE_AT, billing_delivery, give_notice, invoiced_lease

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),  # the catalog is restored by tests/conftest.py
]

BROKER = "redis://127.0.0.1:6379/7"
QUEUE = "landlord-events-test"


def _fresh_broker_connections(app) -> None:
    # The app's connection pools are made on first use with the broker URL of that moment
    # (tests run eagerly until here): drop them so the next publish uses the current URL.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def publishing(settings):
    """This process publishes to the test broker and queue instead of running tasks inline."""
    from config.celery import app

    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=BROKER, task_always_eager=False)
    app.set_current()  # shared tasks publish through the project's app, whatever ran before
    _fresh_broker_connections(app)
    settings.EVENTS_QUEUE = QUEUE
    yield client
    app.conf.update(saved)
    _fresh_broker_connections(app)
    client.flushdb()


@pytest.fixture
def worker():
    with tempfile.TemporaryDirectory() as log_dir:
        w = Worker(
            log_dir,
            broker=BROKER,
            name="events-test",
            queues=QUEUE,
            concurrency=2,
            env={"CELERY_EVENTS_QUEUE": QUEUE, "LOG_LEVEL": "INFO"},  # task results logged
        )
        yield w
        w.stop()


def test_a_worker_on_redis_issues_the_credit_note_within_seconds(publishing, worker):
    lease = invoiced_lease()
    worker.start()
    started = time.monotonic()
    give_notice(lease)  # commits; its deliveries go to Redis, nothing runs in this process
    wait_for(lambda: CreditNote.objects.filter(lease=lease).exists(), 30, "the credit note", worker)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"{elapsed:.1f} s"
    delivery = billing_delivery(lease)
    wait_for(lambda: publishing.llen(QUEUE) == 0, 10, "the queue to drain", worker)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("done", 1)
    (note,) = CreditNote.objects.filter(lease=lease)
    assert (note.total, note.issued_at) == (CREDIT, NOTICE_AT)

    # The same delivery published twice more (a redelivery, a sweep racing it): the worker
    # takes both messages and consumes nothing again.
    events.dispatch([delivery.pk])
    events.dispatch([delivery.pk])
    wait_for(lambda: publishing.llen(QUEUE) == 0, 10, "the duplicates to be taken", worker)
    time.sleep(1.0)  # let them finish; they must change nothing
    worker.stop()
    assert worker.logs().count("{'skipped': 1}") == 2, worker.logs()[-4000:]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("done", 1)
    assert CreditNote.objects.filter(lease=lease).count() == 1
