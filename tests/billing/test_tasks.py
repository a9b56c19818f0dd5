"""Billing jobs in eager mode: fan-out, duplicates, narrow retries, domain errors."""

import datetime as dt
from unittest import mock

import pytest
from django.db import OperationalError

from billing import services, tasks
from billing.exceptions import LeaseNotBillable
from billing.models import BillingRun, Invoice
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 2, 1, 0, 10, tzinfo=dt.UTC).isoformat()


def test_task_names_match_the_beat_schedule(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"billing.daily_billing_scan", "billing.mark_overdue"} <= scheduled
    assert tasks.daily_billing_scan.name == "billing.daily_billing_scan"
    assert tasks.bill_lease.name == "billing.bill_lease"
    assert tasks.mark_overdue.name == "billing.mark_overdue"


def test_scan_fans_out_and_a_second_fire_is_a_no_op():
    leases = [lease_with_lines()[0] for _ in range(3)]
    result = tasks.daily_billing_scan.delay(now=NOW).get()
    assert result["leases"] == 3
    assert Invoice.objects.count() == 6  # January and February each
    run = BillingRun.objects.get()
    assert (run.status, run.invoices_issued, run.leases_scanned) == ("dispatched", 6, 3)

    assert tasks.daily_billing_scan.delay(now=NOW).get()["skipped"] == "already dispatched"
    # A forced re-dispatch and duplicate per-lease tasks change nothing.
    tasks.daily_billing_scan.delay(now=NOW, force=True).get()
    for lease in leases:
        assert tasks.bill_lease.delay(lease.pk, now=NOW).get()["invoices"] == []
    assert Invoice.objects.count() == 6


def test_transient_database_error_is_retried_and_loses_nothing():
    lease, _ = lease_with_lines()
    real = services.lease_bill
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    with mock.patch.object(services, "lease_bill", side_effect=flaky):
        # Eagerly, a retry is applied in place once the exception is not propagated.
        tasks.bill_lease.apply(args=(lease.pk,), kwargs={"now": NOW}, throw=False)
    assert calls["n"] == 2
    assert Invoice.objects.filter(lease=lease).count() == 2


def test_domain_error_is_logged_and_not_retried(caplog):
    lease, _ = lease_with_lines()
    with mock.patch.object(services, "lease_bill", side_effect=LeaseNotBillable()) as call:
        result = tasks.bill_lease.apply(args=(lease.pk,), kwargs={"now": NOW}).get()
    assert result == {"lease": lease.pk, "error": "lease_not_billable"}
    assert call.call_count == 1
    assert "lease_not_billable" in caplog.text


def test_mark_overdue_task():
    lease_with_lines()
    tasks.daily_billing_scan.delay(now=NOW).get()
    later = dt.datetime(2026, 3, 5, tzinfo=dt.UTC).isoformat()
    assert tasks.mark_overdue.delay(now=later).get()["newly_overdue"] == 2
