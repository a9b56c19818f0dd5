"""Lease lifecycle through the services: dates by the rules, allocation, events."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Max, Min

from clusters.choices import NodeStatus
from common.models import DomainEvent, EventDelivery
from leasing import boundaries, notices, services
from leasing.choices import LeaseStatus, LineStatus, NoticeOutcome, NoticeStatus, Party
from leasing.exceptions import CapacityUnavailable, InvalidInput, ListingUnavailable
from leasing.models import Allocation, Lease, LeaseEvent
from tests.factories.leasing import TenantFactory, published_listing

from .conftest import at
from .helpers import db_state

pytestmark = pytest.mark.django_db


def test_request_creates_a_draft_with_the_listing_price(tenant, listing):
    lease = services.lease_request(
        tenant=tenant,
        listing=listing,
        node_count=4,
        commencement_date=dt.date(2026, 1, 1),
        now=at(2025, 12, 1, 10),
    )
    assert lease.status == LeaseStatus.DRAFT
    assert lease.number == "L-2025-0001"
    assert lease.commencement == at(2026, 1, 1)
    assert lease.term_end == at(2026, 6, 30)
    line = lease.lines.get()
    assert line.node_count == 4
    assert line.monthly_rate == Decimal("400000.00")
    assert not Allocation.objects.exists()
    event = lease.events.get()
    assert (event.kind, event.to_status, event.actor_party) == (
        "lease.requested",
        "draft",
        "tenant",
    )


def test_lease_numbers_follow_each_other_per_year(tenant, listing):
    def request(now):
        return services.lease_request(
            tenant=tenant,
            listing=listing,
            node_count=1,
            commencement_date=dt.date(2027, 6, 1),
            now=now,
        ).number

    assert [request(at(2026, 3, 1)) for _ in range(3)] == [
        "L-2026-0001",
        "L-2026-0002",
        "L-2026-0003",
    ]
    assert request(at(2027, 1, 2)) == "L-2027-0001"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"status": "draft"}, "listing_unavailable"),
        ({"status": "withdrawn"}, "listing_unavailable"),
        ({"visibility": "private", "private_tenant": "other"}, "listing_unavailable"),
    ],
)
def test_request_refuses_an_unavailable_listing(tenant, cluster, change, code):
    if change.get("private_tenant") == "other":
        change["private_tenant"] = TenantFactory()
    listing = published_listing(cluster, **change)
    before = db_state()
    with pytest.raises(ListingUnavailable) as exc:
        services.lease_request(
            tenant=tenant,
            listing=listing,
            node_count=1,
            commencement_date=dt.date(2026, 1, 1),
            now=at(2025, 12, 1),
        )
    assert exc.value.code == code
    assert db_state() == before


def test_private_listing_is_open_to_its_tenant(tenant, cluster):
    listing = published_listing(cluster, visibility="private", private_tenant=tenant)
    lease = services.lease_request(
        tenant=tenant,
        listing=listing,
        node_count=1,
        commencement_date=dt.date(2026, 1, 1),
        now=at(2025, 12, 1),
    )
    assert lease.status == LeaseStatus.DRAFT


@pytest.mark.parametrize(
    ("node_count", "commencement", "field"),
    [
        (0, dt.date(2026, 1, 1), "node_count"),
        (21, dt.date(2026, 1, 1), "node_count"),
        (1, dt.date(2025, 12, 31), "commencement_date"),  # before the listing's earliest start
    ],
)
def test_request_validates_its_input(tenant, listing, node_count, commencement, field):
    before = db_state()
    with pytest.raises(InvalidInput) as exc:
        services.lease_request(
            tenant=tenant,
            listing=listing,
            node_count=node_count,
            commencement_date=commencement,
            now=at(2025, 12, 1),
        )
    assert exc.value.code == "validation_error"
    assert field in exc.value.extra["fields"]
    assert db_state() == before


def test_request_refuses_a_commencement_in_the_past(tenant, listing):
    with pytest.raises(InvalidInput) as exc:
        services.lease_request(
            tenant=tenant,
            listing=listing,
            node_count=1,
            commencement_date=dt.date(2026, 1, 1),
            now=at(2026, 1, 2),
        )
    assert "commencement_date" in exc.value.extra["fields"]


def test_approve_allocates_healthy_free_nodes_for_the_whole_term(make_lease, cluster):
    down = cluster.nodes.order_by("pk").first()
    down.status = NodeStatus.DOWN
    down.save()
    lease = make_lease(nodes=10)
    assert lease.status == LeaseStatus.SCHEDULED
    allocations = Allocation.objects.filter(line__lease=lease)
    assert allocations.count() == 10
    assert not allocations.filter(node=down).exists()
    assert set(allocations.values_list("starts_at", "ends_at")) == {
        (at(2026, 1, 1), at(2026, 6, 30))
    }
    assert list(lease.events.values_list("kind", flat=True)) == [
        "lease.requested",
        "lease.approved",
    ]


def test_approve_after_commencement_activates_at_once(make_lease):
    lease = make_lease(nodes=2, approve_at=at(2026, 1, 1, 9))
    assert lease.status == LeaseStatus.ACTIVE
    assert list(lease.events.values_list("kind", flat=True))[-1] == "lease.activated"


def test_no_overcommit_second_lease_gets_other_nodes_then_none(make_lease, tenant, listing):
    first = make_lease(nodes=12)
    second_draft = services.lease_request(
        tenant=tenant,
        listing=listing,
        node_count=9,
        commencement_date=dt.date(2026, 3, 1),
        now=at(2025, 12, 1),
    )
    before = db_state()
    with pytest.raises(CapacityUnavailable) as exc:
        services.lease_approve(lease=second_draft, now=at(2025, 12, 2))
    assert exc.value.code == "capacity_unavailable"
    assert exc.value.http_status == 409
    assert exc.value.extra["available"] == 8
    assert db_state() == before
    third = make_lease(nodes=8, commencement=dt.date(2026, 3, 1))
    mine = set(Allocation.objects.filter(line__lease=first).values_list("node_id", flat=True))
    theirs = set(Allocation.objects.filter(line__lease=third).values_list("node_id", flat=True))
    assert not mine & theirs


def test_adjacent_periods_share_nodes(make_lease):
    first = make_lease(nodes=20)
    # The next lease starts exactly at the first one's term end: half-open periods touch.
    second = make_lease(nodes=20, commencement=dt.date(2026, 6, 30))
    assert second.commencement == first.term_end
    assert Allocation.objects.count() == 40


def test_t2_notice_through_the_service_frees_capacity_at_the_effective_end(make_lease, operator):
    lease = make_lease(nodes=20, approve_at=at(2026, 1, 1))
    notice = notices.notice_give(
        lease=lease, party=Party.TENANT, now=at(2026, 1, 1, 17, 45), reason="moving out"
    )
    assert notice.notice_date == dt.date(2026, 1, 1)
    assert notice.effective_end == at(2026, 4, 2)
    assert notice.outcome == NoticeOutcome.ENDS
    assert notice.status == NoticeStatus.RECORDED
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.NOTICE_GIVEN
    assert lease.effective_end == at(2026, 4, 2)
    assert lease.end == at(2026, 4, 2)
    assert set(Allocation.objects.values_list("ends_at", flat=True)) == {at(2026, 4, 2)}
    # Those nodes can be leased from the effective end on.
    nxt = make_lease(nodes=20, commencement=dt.date(2026, 4, 2), requested_at=at(2026, 1, 2))
    assert nxt.status == LeaseStatus.SCHEDULED
    event = lease.events.get(kind="notice.received")
    assert (event.from_status, event.to_status) == ("active", "notice_given")
    assert event.data["effective_end"] == "2026-04-02T00:00:00+00:00"


def test_several_notices_the_earliest_wins_and_withdrawal_recomputes(make_lease):
    lease = make_lease(nodes=5, approve_at=at(2026, 1, 1))
    late = notices.notice_give(
        lease=lease, party=Party.TENANT, requested_end=at(2026, 5, 20, 8), now=at(2026, 1, 10)
    )
    assert late.effective_end == at(2026, 5, 21)
    early = notices.notice_give(lease=lease, party=Party.OPERATOR, now=at(2026, 1, 20))
    assert early.effective_end == at(2026, 4, 21)
    lease.refresh_from_db()
    assert lease.effective_end == at(2026, 4, 21)
    assert Allocation.objects.aggregate(e=Max("ends_at"))["e"] == at(2026, 4, 21)

    notices.notice_withdraw_request(notice=early, party=Party.OPERATOR, now=at(2026, 2, 1))
    lease.refresh_from_db()
    assert lease.effective_end == at(2026, 4, 21)  # binding until the other party confirms
    notices.notice_withdraw_confirm(notice=early, party=Party.TENANT, now=at(2026, 2, 2))
    early.refresh_from_db()
    lease.refresh_from_db()
    assert early.status == NoticeStatus.WITHDRAWN
    assert lease.effective_end == at(2026, 5, 21)
    assert lease.status == LeaseStatus.NOTICE_GIVEN
    assert set(Allocation.objects.values_list("ends_at", flat=True)) == {at(2026, 5, 21)}

    notices.notice_withdraw_request(notice=late, party=Party.TENANT, now=at(2026, 2, 3))
    notices.notice_withdraw_confirm(notice=late, party=Party.OPERATOR, now=at(2026, 2, 4))
    lease.refresh_from_db()
    assert lease.effective_end is None
    assert lease.status == LeaseStatus.ACTIVE
    assert set(Allocation.objects.values_list("ends_at", flat=True)) == {at(2026, 6, 30)}


def test_withdrawal_refused_when_the_freed_nodes_were_leased_again(make_lease):
    lease = make_lease(nodes=20, approve_at=at(2026, 1, 1))
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 1))
    make_lease(nodes=20, commencement=dt.date(2026, 4, 2), requested_at=at(2026, 1, 2))
    notices.notice_withdraw_request(notice=notice, party=Party.TENANT, now=at(2026, 1, 5))
    before = db_state()
    with pytest.raises(CapacityUnavailable):
        notices.notice_withdraw_confirm(notice=notice, party=Party.OPERATOR, now=at(2026, 1, 6))
    assert db_state() == before


def test_t5_moot_notice_changes_nothing(make_lease):
    lease = make_lease(nodes=3, approve_at=at(2026, 1, 1))
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 3, 31, 12))
    assert notice.outcome == NoticeOutcome.MOOT
    assert notice.status == NoticeStatus.MOOT
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.ACTIVE
    assert lease.effective_end is None
    assert lease.end == at(2026, 6, 30)
    boundaries.process_boundaries(now=at(2026, 6, 30))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.EXPIRED


def test_t6_notice_on_one_line_ends_that_line_only(tenant, cluster):
    lease = services.lease_create(
        tenant=tenant,
        lines=[
            services.LineSpec(cluster, 4, Decimal("625000000.00")),
            services.LineSpec(cluster, 4, Decimal("625000000.00")),
        ],
        commencement_date=dt.date(2026, 1, 1),
        now=at(2025, 12, 1),
    )
    services.lease_approve(lease=lease, now=at(2026, 1, 1))
    one, two = lease.lines.order_by("pk")
    notice = notices.notice_give(lease=lease, party=Party.TENANT, lines=[two], now=at(2026, 2, 15))
    assert (notice.outcome, notice.effective_end) == (NoticeOutcome.ENDS, at(2026, 5, 17))
    lease.refresh_from_db()
    one.refresh_from_db()
    two.refresh_from_db()
    assert two.end == at(2026, 5, 17)
    assert one.end == lease.end == lease.term_end == at(2026, 6, 30)
    assert (lease.effective_end, lease.status) == (None, LeaseStatus.ACTIVE)
    assert set(two.allocations.values_list("ends_at", flat=True)) == {at(2026, 5, 17)}
    assert set(one.allocations.values_list("ends_at", flat=True)) == {at(2026, 6, 30)}
    boundaries.process_boundaries(now=at(2026, 5, 17))
    two.refresh_from_db()
    lease.refresh_from_db()
    assert (two.status, lease.status) == (LineStatus.ENDED, LeaseStatus.ACTIVE)
    boundaries.process_boundaries(now=at(2026, 6, 30))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.EXPIRED


def test_t7_cancelled_before_commencement(make_lease):
    lease = make_lease(nodes=4, commencement=dt.date(2026, 6, 1))
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 15, 9))
    assert notice.outcome == NoticeOutcome.CANCELLED
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.SCHEDULED
    assert lease.end == lease.commencement  # holds nothing
    assert not Allocation.objects.filter(line__lease=lease).exists()
    boundaries.process_boundaries(now=at(2026, 4, 15, 23))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.SCHEDULED
    boundaries.process_boundaries(now=notice.effective_end)
    lease.refresh_from_db()
    notice.refresh_from_db()
    assert lease.status == LeaseStatus.CANCELLED
    assert notice.status == NoticeStatus.EFFECTIVE
    assert set(lease.lines.values_list("status", flat=True)) == {LineStatus.CANCELLED}


def test_t8_runs_thirty_days_then_terminates(make_lease):
    lease = make_lease(nodes=4, commencement=dt.date(2026, 6, 1))
    notices.notice_give(lease=lease, party=Party.OPERATOR, now=at(2026, 4, 1, 8))
    lease.refresh_from_db()
    assert lease.effective_end == at(2026, 7, 1)
    assert lease.status == LeaseStatus.SCHEDULED
    boundaries.process_boundaries(now=at(2026, 6, 1))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.NOTICE_GIVEN
    boundaries.process_boundaries(now=at(2026, 7, 1))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.TERMINATED
    assert (lease.end - lease.commencement).days == 30
    agg = Allocation.objects.filter(line__lease=lease).aggregate(
        s=Min("starts_at"), e=Max("ends_at")
    )
    assert (agg["s"], agg["e"]) == (at(2026, 6, 1), at(2026, 7, 1))


def test_notice_on_some_lines_ends_only_those(tenant, operator):
    from tests.factories.clusters import cluster_with_nodes

    a, b = cluster_with_nodes(4), cluster_with_nodes(4)
    lease = services.lease_create(
        tenant=tenant,
        lines=[
            services.LineSpec(cluster=a, node_count=4, monthly_rate=Decimal("100")),
            services.LineSpec(cluster=b, node_count=4, monthly_rate=Decimal("200")),
        ],
        commencement_date=dt.date(2026, 1, 1),
        now=at(2025, 12, 1),
    )
    lease = services.lease_approve(lease=lease, actor=operator, now=at(2026, 1, 1))
    line_a, line_b = lease.lines.order_by("pk")
    notices.notice_give(lease=lease, party=Party.TENANT, lines=[line_a], now=at(2026, 2, 1))
    line_a.refresh_from_db()
    lease.refresh_from_db()
    assert line_a.effective_end == at(2026, 5, 3)
    assert lease.effective_end is None
    assert lease.status == LeaseStatus.ACTIVE
    assert set(Allocation.objects.filter(line=line_a).values_list("ends_at", flat=True)) == {
        at(2026, 5, 3)
    }
    assert set(Allocation.objects.filter(line=line_b).values_list("ends_at", flat=True)) == {
        at(2026, 6, 30)
    }
    # A notice on the other line too: every line is bound, so the lease ends with its last line.
    notices.notice_give(lease=lease, party=Party.OPERATOR, lines=[line_b], now=at(2026, 3, 1))
    lease.refresh_from_db()
    assert lease.effective_end == at(2026, 5, 31)
    assert lease.status == LeaseStatus.NOTICE_GIVEN
    boundaries.process_boundaries(now=at(2026, 5, 3))
    line_a.refresh_from_db()
    line_b.refresh_from_db()
    lease.refresh_from_db()
    assert (line_a.status, line_b.status, lease.status) == ("ended", "open", "notice_given")
    boundaries.process_boundaries(now=at(2026, 5, 31))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.TERMINATED
    assert set(lease.lines.values_list("status", flat=True)) == {"ended"}


def test_renewal_on_the_same_nodes_and_handover(make_lease, operator):
    lease = make_lease(nodes=6, approve_at=at(2026, 1, 1))
    before = Lease.objects.filter(pk=lease.pk).values().get()
    successor = services.lease_renew(lease=lease, actor=operator, now=at(2026, 5, 1))
    assert Lease.objects.filter(pk=lease.pk).values().get() == before  # predecessor untouched
    assert successor.predecessor == lease
    assert successor.status == LeaseStatus.SCHEDULED
    assert successor.commencement == lease.term_end
    assert successor.term_end == at(2026, 12, 27)
    old = set(Allocation.objects.filter(line__lease=lease).values_list("node_id", flat=True))
    new = set(Allocation.objects.filter(line__lease=successor).values_list("node_id", flat=True))
    assert old == new
    boundaries.process_boundaries(now=at(2026, 6, 30))
    lease.refresh_from_db()
    successor.refresh_from_db()
    assert lease.status == LeaseStatus.EXPIRED
    assert lease.released_at == lease.term_end  # nodes handed to the renewal: no holdover
    assert successor.status == LeaseStatus.ACTIVE
    boundaries.process_boundaries(now=at(2026, 7, 5))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.EXPIRED


def test_expiry_holdover_and_release(make_lease, operator):
    lease = make_lease(nodes=2, approve_at=at(2026, 1, 1))
    boundaries.process_boundaries(now=at(2026, 6, 30, 23))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.EXPIRED
    boundaries.process_boundaries(now=at(2026, 7, 1))  # 24 h drain grace over
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.HOLDOVER
    services.lease_release_confirm(
        lease=lease, released_at=at(2026, 7, 2, 6), actor=operator, now=at(2026, 7, 3)
    )
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.CLOSED
    assert lease.released_at == at(2026, 7, 2, 6)
    assert list(lease.events.values_list("kind", flat=True))[-3:] == [
        "lease.expired",
        "lease.holdover",
        "lease.released",
    ]


def test_release_within_grace_closes_without_holdover(make_lease):
    lease = make_lease(nodes=2, approve_at=at(2026, 1, 1))
    boundaries.process_boundaries(now=at(2026, 6, 30))
    services.lease_release_confirm(lease=lease, now=at(2026, 6, 30, 4))
    boundaries.process_boundaries(now=at(2026, 7, 9))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.CLOSED


def test_events_are_written_with_the_change_and_consumed_after_commit(
    make_lease, django_capture_on_commit_callbacks, event_consumer
):
    received = event_consumer("notice.received")
    lease = make_lease(nodes=1, approve_at=at(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 2))
    audit = LeaseEvent.objects.get(kind="notice.received")
    event = DomainEvent.objects.get(kind="notice.received")
    assert (event.subject, event.subject_id, event.occurred_at) == ("lease", lease.pk, audit.at)
    assert event.payload["lease_event"] == audit.pk
    assert event.payload["lease"] == {
        "id": lease.pk,
        "number": lease.number,
        "status": "notice_given",
    }
    assert EventDelivery.objects.get(event=event, consumer="tests.recorder").status == "pending"
    assert received == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert [e.pk for e in received] == [event.pk]
    assert EventDelivery.objects.get(event=event, consumer="tests.recorder").status == "done"
