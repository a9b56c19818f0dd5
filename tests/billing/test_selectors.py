"""Billing reads: the revenue summary reads only the lines alive in its range."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import selectors, services
from billing.choices import NOT_BILLED
from leasing.models import LeaseLine
from tests.factories.billing import RATE, lease_with_lines

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


@pytest.fixture
def book():
    old, _ = lease_with_lines(commencement_date=dt.date(2023, 1, 1), term_days=90)
    current, _ = lease_with_lines(rates=(RATE, Decimal("920000000.00")))
    west, _ = lease_with_lines(
        commencement_date=dt.date(2026, 4, 30), tz="America/Los_Angeles", term_days=30
    )
    ended, _ = lease_with_lines(commencement_date=dt.date(2025, 1, 1), term_days=120)
    services.billing_run(now=NOW)
    return old, current, west, ended


def test_revenue_summary_reads_only_lines_alive_in_its_range(book):
    _old, current, west, ended = book
    range_start = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)  # months_back=11 from March 2026
    range_end = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    leases = set(
        selectors.lines_overlapping(range_start, range_end).values_list("lease_id", flat=True)
    )
    # Ended 2025-05-01: alive in April 2025. Starts in local April: alive in the range.
    assert leases == {current.pk, west.pk, ended.pk}


def test_revenue_summary_is_unchanged_by_the_range_filter(book, monkeypatch):
    with CaptureQueriesContext(connection) as ctx:
        bounded = selectors.revenue_summary(now=NOW, months_back=11, months_ahead=1)
    assert len(ctx.captured_queries) == 4
    monkeypatch.setattr(
        selectors,
        "lines_overlapping",
        lambda start, end: LeaseLine.objects.select_related("lease").exclude(
            lease__status__in=NOT_BILLED
        ),
    )
    everything = selectors.revenue_summary(now=NOW, months_back=11, months_ahead=1)
    assert bounded.accrued == everything.accrued
    assert bounded.accrued_by_tenant == everything.accrued_by_tenant
    assert bounded.billed == everything.billed
    assert bounded.run_rate == everything.run_rate == RATE + Decimal("920000000.00")
    assert bounded.tenants == everything.tenants
