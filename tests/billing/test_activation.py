"""The first, partial month is invoiced when the lease activates, not at the next daily run."""

import datetime as dt
from decimal import Decimal

import pytest

from billing import services
from billing.models import Invoice
from leasing import boundaries as leasing_boundaries
from leasing import services as leasing
from leasing.choices import LeaseStatus
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def scheduled_lease(start: dt.date):
    lease = leasing.lease_create(
        tenant=TenantFactory(),
        lines=[leasing.LineSpec(cluster_with_nodes(4), 4, Decimal("1250000000.00"))],
        commencement_date=start,
        now=at(2025, 12, 1),
    )
    return leasing.lease_approve(lease=lease, now=at(2025, 12, 2))


def test_the_boundary_job_activates_and_the_first_month_is_invoiced_at_once(
    django_capture_on_commit_callbacks,
):
    lease = scheduled_lease(dt.date(2026, 1, 15))
    # The daily run before commencement bills nothing (a mid-month start is billed then).
    services.billing_run(now=at(2026, 1, 14, 0, 10))
    assert not Invoice.objects.filter(lease=lease).exists()

    with django_capture_on_commit_callbacks(execute=True):
        leasing_boundaries.process_boundaries(now=at(2026, 1, 15, 0, 5))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.ACTIVE
    (january,) = Invoice.objects.filter(lease=lease)
    assert (january.period, january.issued_at) == (dt.date(2026, 1, 1), at(2026, 1, 15, 0, 5))
    assert january.total == Decimal("685483870.97")  # 17/31 of a month

    # Exactly once: the daily run minutes later, and the run again, find the month taken.
    services.billing_run(now=at(2026, 1, 15, 0, 10))
    services.billing_run(now=at(2026, 1, 16, 0, 10))
    assert list(Invoice.objects.filter(lease=lease)) == [january]


def test_an_operator_activation_bills_at_once_too(django_capture_on_commit_callbacks):
    operator = UserFactory(is_staff=True)
    lease = scheduled_lease(dt.date(2026, 1, 20))
    with django_capture_on_commit_callbacks(execute=True):
        leasing.lease_activate(lease=lease, actor=operator, now=at(2026, 1, 20, 9))
    (january,) = Invoice.objects.filter(lease=lease)
    assert (january.period, january.issued_at) == (dt.date(2026, 1, 1), at(2026, 1, 20, 9))
    assert january.issued_by is None  # billed by the scheduler's service, not by hand
