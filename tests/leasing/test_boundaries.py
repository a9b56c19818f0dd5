"""The boundary job: twice, late (catch-up) and stepwise give the same end state."""

import datetime as dt

import pytest
from django.db import transaction

from leasing import boundaries, notices, services
from leasing.choices import LeaseStatus, Party
from leasing.models import Lease, LeaseEvent
from leasing.tasks import process_boundaries as task
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing

from .conftest import at

pytestmark = pytest.mark.django_db


def portfolio(n: int = 6) -> None:
    """Leases in every shape: plain, noticed, cancelled before start, renewed."""
    cluster = cluster_with_nodes(3 * n)
    listing = published_listing(cluster)
    for i in range(n):
        lease = services.lease_request(
            tenant=TenantFactory(),
            listing=listing,
            node_count=1,
            commencement_date=dt.date(2026, 1, 1) + dt.timedelta(days=10 * i),
            now=at(2025, 12, 1),
        )
        services.lease_approve(lease=lease, now=at(2025, 12, 2))
        if i % 3 == 1:
            notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 20))
        if i % 3 == 2:
            services.lease_renew(lease=lease, now=at(2026, 1, 20))
    late = services.lease_request(
        tenant=TenantFactory(),
        listing=listing,
        node_count=1,
        commencement_date=dt.date(2026, 8, 1),
        now=at(2025, 12, 1),
    )
    services.lease_approve(lease=late, now=at(2025, 12, 2))
    notices.notice_give(lease=late, party=Party.OPERATOR, now=at(2026, 1, 5))  # cancels


def state():
    return (
        list(
            Lease.objects.order_by("number").values_list(
                "number", "status", "effective_end", "released_at"
            )
        ),
        sorted(LeaseEvent.objects.values_list("lease__number", "kind")),
    )


END = at(2027, 3, 1)


def test_running_twice_changes_nothing_the_second_time():
    portfolio()
    first = boundaries.process_boundaries(now=END)
    assert first
    after_first = state()
    assert boundaries.process_boundaries(now=END) == {}
    assert state() == after_first


def test_late_run_catches_up_to_the_same_state_as_running_daily():
    portfolio()
    with transaction.atomic():
        boundaries.process_boundaries(now=END)
        late = state()
        transaction.set_rollback(True)
    day = at(2025, 12, 2)
    while day < END:
        boundaries.process_boundaries(now=day)
        day += dt.timedelta(days=1)
    boundaries.process_boundaries(now=END)
    assert state() == late


def test_late_run_walks_a_lease_through_every_boundary():
    portfolio(1)
    lease = Lease.objects.get(status=LeaseStatus.SCHEDULED, commencement=at(2026, 1, 1))
    boundaries.process_boundaries(now=at(2026, 9, 1))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.HOLDOVER
    assert list(lease.events.values_list("kind", flat=True))[-3:] == [
        "lease.activated",
        "lease.expired",
        "lease.holdover",
    ]


def test_nothing_due_costs_a_constant_number_of_queries(django_assert_num_queries):
    portfolio(3)
    boundaries.process_boundaries(now=at(2026, 1, 2))
    with django_assert_num_queries(4):
        assert boundaries.process_boundaries(now=at(2026, 1, 2, 0, 5)) == {}
    portfolio(9)
    boundaries.process_boundaries(now=at(2026, 1, 2))
    with django_assert_num_queries(4):
        assert boundaries.process_boundaries(now=at(2026, 1, 2, 0, 5)) == {}


def test_the_beat_task_runs_the_service():
    assert task.name == "leasing.process_boundaries"
    assert task.apply().get() == {}
