"""Real worker, real broker: billing stays exact through SIGKILLs, duplicates and lost backends.

A `celery -A config worker` subprocess runs against Redis (database 5) and the PostgreSQL test
database. The test publishes the daily scan as beat would (twice, as two beats would), kills
the whole worker with SIGKILL in the middle of the run several times and restarts it, kills a
pool child, terminates the worker's PostgreSQL backends mid-run, and publishes the scan again
after each restart (a run that is run again). The final state must be exactly one invoice per
lease and month, each total equal to the rule's amount to the cent, and gapless numbers.

Note on Redis: after a whole-worker kill its unacknowledged messages come back only after the
broker visibility timeout (an hour in the settings); the run run again (the forced scan here,
the next daily scan in production) is what finishes the work meanwhile. A killed pool child is
different: the parent rejects the message and Redis redelivers it at once.
"""

import datetime as dt
import random
import tempfile
import time
from collections import defaultdict
from decimal import Decimal

import pytest
import redis
from celery import Celery
from django.db import connection

from billing import planning, proration
from billing.models import Invoice, InvoiceLine
from leasing.models import LeaseLine
from tests.celery_worker import Worker, wait_for
from tests.factories.clusters import ClusterFactory
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, TenantFactory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),  # the catalog is restored by tests/conftest.py
]

BROKER = "redis://127.0.0.1:6379/5"
NOW = dt.datetime(2026, 11, 20, 0, 10, tzinfo=dt.UTC)
LEASES = 120
ZONES = ["UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo"]


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    # Not the current app: shared tasks published later in this process (domain events)
    # must keep resolving to the project's app, not to this test's publisher.
    app = Celery("billing-test-publisher", broker=BROKER, set_as_current=False)
    yield client, app
    app.close()
    client.flushdb()


@pytest.fixture
def worker():
    with tempfile.TemporaryDirectory() as log_dir:
        w = Worker(log_dir, broker=BROKER, name="billing-test")
        yield w
        w.stop()


def make_leases() -> list:
    rng = random.Random(5)
    tenant = TenantFactory()
    cluster = ClusterFactory()
    leases = []
    for _ in range(LEASES):
        start = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(0, 330))
        lease = LeaseFactory(
            tenant=tenant,
            commencement_date=start,
            contract_timezone=rng.choice(ZONES),
            drain_grace_hours=10**6,
        )
        for _ in range(rng.choice([1, 2])):
            rate = Decimal(rng.randrange(1, 10**11)) / 100
            LeaseLineFactory(lease=lease, cluster=cluster, monthly_rate=rate)
        leases.append(lease)
    return leases


def expected_invoices() -> dict[tuple[int, dt.date], Decimal]:
    """The rule, computed independently of the worker: (lease, month) → total."""
    lines = defaultdict(list)
    for line in LeaseLine.objects.select_related("lease"):
        lines[line.lease_id].append(line)
    expected = {}
    for lease_lines in lines.values():
        lease = lease_lines[0].lease
        for period in planning.rent_periods(lease, lease_lines):
            if planning.rent_issue_from(lease, period) > NOW:
                break
            p_start, p_end = proration.period_bounds(period, lease.contract_timezone)

            def accrued(through, lease=lease, lease_lines=lease_lines):
                return sum(
                    proration.cumulative(
                        line.monthly_rate,
                        life_start=lease.commencement,
                        life_end=line.end,
                        through=through,
                        tz=lease.contract_timezone,
                    )
                    for line in lease_lines
                )

            # The lease-level rule: round(C(end)) − round(C(start)).
            expected[(lease.pk, period)] = proration.to_money(accrued(p_end)) - proration.to_money(
                accrued(p_start)
            )
    return expected


def terminate_worker_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def test_sigkills_duplicates_and_lost_backends_leave_exactly_one_invoice_each(broker, worker):
    client, app = broker
    make_leases()
    expected = expected_invoices()
    assert len(expected) > 5 * LEASES // 2

    def scan(force: bool = False) -> None:
        app.send_task("billing.daily_billing_scan", kwargs={"now": NOW.isoformat(), "force": force})

    def count() -> int:
        return Invoice.objects.count()

    def progress(what: str, step: int = 15) -> None:
        floor = count()
        wait_for(lambda: count() > floor + step, 60, what, worker)

    worker.start()
    scan()
    scan()  # two beats firing the same entry
    kills = terminated = 0
    for round_ in range(3):
        progress("progress before a kill")
        if round_ == 1:
            assert worker.kill_a_child()  # the parent re-queues the task at once
            progress("progress after a child kill")
            # PostgreSQL drops the worker's connections again and again, mid-transaction.
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                terminated += terminate_worker_backends()
                time.sleep(0.05)
            progress("progress after lost backends")
        worker.kill()
        kills += 1
        worker.start()
        scan(force=True)  # the run, run again
        scan()  # and a duplicate fire on top
    assert kills == 3

    wait_for(
        lambda: count() >= len(expected) and client.llen("celery") == 0,
        90,
        "the run to finish",
        worker,
    )
    time.sleep(1.0)  # let any straggling duplicate finish; it must change nothing
    worker.stop()
    logs = worker.logs()
    assert terminated > 0
    # Lost backends surfaced as transient errors and were retried, not dropped.
    assert "Retry in" in logs, logs[-4000:]

    rows = list(Invoice.objects.values_list("lease_id", "period", "kind", "total", "number"))
    assert len(rows) == len(expected)
    assert len({(lease, period, kind) for lease, period, kind, _, _ in rows}) == len(rows)
    assert {(lease, period): total for lease, period, _, total, _ in rows} == expected
    numbers = sorted(int(number.rsplit("-", 1)[1]) for *_, number in rows)
    assert numbers == list(range(1, len(rows) + 1))  # gapless despite the kills
    line_totals = defaultdict(Decimal)
    for invoice_id, amount in InvoiceLine.objects.values_list("invoice_id", "amount"):
        line_totals[invoice_id] += amount
    for invoice in Invoice.objects.all():
        assert line_totals[invoice.pk] == invoice.total
