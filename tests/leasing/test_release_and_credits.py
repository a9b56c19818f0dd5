"""Nodes of an ended lease stay held until release; a credited notice can be withdrawn and
billing bills the credit back; a handover to a renewal is a release; the capacity view counts
only healthy held nodes."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from billing import services as billing
from billing.choices import CreditNoteStatus, InvoiceKind
from billing.models import CreditNote, Invoice
from clusters.choices import NodeStatus
from clusters.models import Node
from leasing import allocation, boundaries, notices, services
from leasing.choices import LeaseStatus, NoticeStatus, Party
from leasing.events import EventKind
from leasing.exceptions import CapacityUnavailable
from leasing.models import Allocation, LeaseEvent
from reclaim.choices import ReclaimStatus
from reclaim.models import ReclaimDecision
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory

from .conftest import at
from .helpers import db_state

pytestmark = pytest.mark.django_db


def nodes_of(lease) -> set[int]:
    return set(Allocation.objects.filter(line__lease=lease).values_list("node_id", flat=True))


def short_lease(cluster, nodes, start, term_days=30):
    """Create and approve a UTC lease of `nodes` nodes of `cluster` from `start`."""
    lease = services.lease_create(
        tenant=TenantFactory(),
        lines=[services.LineSpec(cluster, nodes, Decimal("100"))],
        commencement_date=start,
        term_days=term_days,
        now=at(start.year, start.month, start.day),
    )
    return services.lease_approve(lease=lease, now=at(start.year, start.month, start.day, 1))


# --- 1. an ended lease holds its nodes until release is confirmed ------------------------------


def test_nodes_in_holdover_are_not_leased_again_until_released():
    cluster = cluster_with_nodes(2)
    a = short_lease(cluster, 2, dt.date(2026, 1, 1))  # ends 2026-01-31
    boundaries.process_boundaries(now=at(2026, 2, 5))
    a.refresh_from_db()
    assert (a.status, a.released_at) == (LeaseStatus.HOLDOVER, None)
    b = services.lease_create(
        tenant=TenantFactory(),
        lines=[services.LineSpec(cluster, 2, Decimal("100"))],
        commencement_date=dt.date(2026, 2, 5),
        term_days=30,
        now=at(2026, 2, 5),
    )
    before = db_state()
    with pytest.raises(CapacityUnavailable) as refused:
        services.lease_approve(lease=b, now=at(2026, 2, 5, 1))
    assert refused.value.code == "capacity_unavailable"
    assert db_state() == before
    services.lease_release_confirm(lease=a, now=at(2026, 2, 6))
    b = services.lease_approve(lease=b, now=at(2026, 2, 6, 1))
    assert b.status == LeaseStatus.ACTIVE
    assert nodes_of(b) == nodes_of(a)


def test_nodes_still_draining_are_not_leased_again():
    cluster = cluster_with_nodes(2)
    a = short_lease(cluster, 2, dt.date(2026, 1, 1))
    boundaries.process_boundaries(now=at(2026, 1, 31, 6))  # within the 24 h drain grace
    a.refresh_from_db()
    assert (a.status, a.released_at) == (LeaseStatus.EXPIRED, None)
    now = at(2026, 1, 31, 6)
    assert allocation.free_node_ids(cluster.pk, at(2026, 2, 2), at(2026, 3, 1), now=now) == []
    # Before its end the ended lease's rows are the only constraint, as before.
    assert allocation.free_node_ids(cluster.pk, at(2025, 12, 1), at(2026, 1, 1), now=now) == sorted(
        nodes_of(a)
    )


def test_a_lease_past_its_end_holds_its_nodes_before_the_boundary_job_runs():
    """Minutes after its end a lease is still ACTIVE until the boundary job ends it; its nodes
    are no less held (draining or holdover follow), so they are not leased again meanwhile."""
    cluster = cluster_with_nodes(2)
    a = short_lease(cluster, 2, dt.date(2026, 1, 1))  # ends 2026-01-31 00:00 UTC
    just_after = at(2026, 1, 31, 0, 3)
    a.refresh_from_db()
    assert a.status == LeaseStatus.ACTIVE
    assert a.term_end < just_after
    assert allocation.free_node_ids(cluster.pk, just_after, at(2026, 3, 1), now=just_after) == []
    # Before its end, the same period is free after it, as for any signed lease.
    before_end = at(2026, 1, 30)
    assert allocation.free_node_ids(cluster.pk, a.term_end, at(2026, 3, 1), now=before_end) == (
        sorted(nodes_of(a))
    )
    b = services.lease_create(
        tenant=TenantFactory(),
        lines=[services.LineSpec(cluster, 2, Decimal("100"))],
        commencement_date=dt.date(2026, 1, 31),
        term_days=30,
        now=just_after,
    )
    before = db_state()
    with pytest.raises(CapacityUnavailable):
        services.lease_approve(lease=b, now=just_after)
    assert db_state() == before
    boundaries.process_boundaries(now=at(2026, 1, 31, 0, 5))
    services.lease_release_confirm(lease=a, now=at(2026, 1, 31, 0, 6))
    b = services.lease_approve(lease=b, now=at(2026, 1, 31, 0, 7))
    assert nodes_of(b) == nodes_of(a)


def test_other_free_nodes_are_picked_past_an_unreleased_lease():
    cluster = cluster_with_nodes(4)
    a = short_lease(cluster, 2, dt.date(2026, 1, 1))
    boundaries.process_boundaries(now=at(2026, 2, 5))
    b = short_lease(cluster, 2, dt.date(2026, 2, 5))
    assert b.status == LeaseStatus.ACTIVE
    assert nodes_of(b).isdisjoint(nodes_of(a))
    assert len(nodes_of(b)) == 2


def test_line_ended_early_gives_its_nodes_back_at_its_end(cluster, tenant):
    """Only rows running to the lease's end are held after it: a line ended by its own notice
    released its nodes then."""
    lease = services.lease_create(
        tenant=tenant,
        lines=[
            services.LineSpec(cluster, 4, Decimal("100")),
            services.LineSpec(cluster, 4, Decimal("100")),
        ],
        commencement_date=dt.date(2026, 1, 1),
        now=at(2025, 12, 1),
    )
    services.lease_approve(lease=lease, now=at(2025, 12, 2))
    first, second = lease.lines.order_by("pk")
    notices.notice_give(lease=lease, party=Party.TENANT, lines=[first], now=at(2026, 1, 10))
    notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 2, 1))
    boundaries.process_boundaries(now=at(2026, 5, 5))
    lease.refresh_from_db()
    assert (lease.status, lease.released_at) == (LeaseStatus.HOLDOVER, None)
    first_nodes = set(first.allocations.values_list("node_id", flat=True))
    second_nodes = set(second.allocations.values_list("node_id", flat=True))
    free = set(
        allocation.free_node_ids(cluster.pk, at(2026, 6, 1), at(2026, 7, 1), now=at(2026, 5, 5))
    )
    assert first_nodes <= free
    assert second_nodes.isdisjoint(free)


def test_renewal_takes_over_the_same_nodes_and_new_leases_cannot(make_lease, cluster):
    lease = make_lease(nodes=cluster.nodes.count(), approve_at=at(2026, 1, 1))
    successor = services.lease_renew(lease=lease, now=at(2026, 5, 1))
    boundaries.process_boundaries(now=at(2026, 7, 5))  # handover at term end, grace long past
    lease.refresh_from_db()
    successor.refresh_from_db()
    assert (lease.status, lease.released_at) == (LeaseStatus.EXPIRED, lease.term_end)
    assert successor.status == LeaseStatus.ACTIVE
    assert nodes_of(successor) == nodes_of(lease)
    # After the renewal's own term, its nodes are free again as far as its rows go.
    now = at(2026, 7, 5)
    assert allocation.free_node_ids(cluster.pk, at(2026, 7, 5), at(2026, 8, 1), now=now) == []
    free_after = allocation.free_node_ids(cluster.pk, successor.term_end, at(2027, 2, 1), now=now)
    assert len(free_after) == 20


# --- 2. a notice whose end billing already credited can be withdrawn; billing bills it back --


def credited_notice():
    """A lease billed for March, a tenant notice on March 5 and the billing run that credits
    the days after its end (notice of 10 days: the lease ends inside March)."""
    lease, _ = lease_with_lines(notice_days=10, with_nodes=True)  # nodes accepted on time
    billing.billing_run(now=at(2026, 3, 1, 0, 10))
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 3, 5, 12))
    return lease, notice


def test_a_credited_notice_is_withdrawn_and_the_next_run_bills_the_credit_back():
    """Withdrawing used to be refused once billing had credited the notice (the month was
    never billed again); a supplementary invoice now bills the credited days back."""
    lease, notice = credited_notice()
    notices.notice_withdraw_request(notice=notice, party=Party.OPERATOR, now=at(2026, 3, 5, 13))
    billing.billing_run(now=at(2026, 3, 6, 0, 10))
    (note,) = CreditNote.objects.filter(lease=lease, status=CreditNoteStatus.ISSUED)
    notices.notice_withdraw_confirm(notice=notice, party=Party.TENANT, now=at(2026, 3, 8))
    notice.refresh_from_db()
    lease.refresh_from_db()
    assert notice.status == NoticeStatus.WITHDRAWN
    assert (lease.status, lease.effective_end) == (LeaseStatus.ACTIVE, None)
    assert set(Allocation.objects.filter(line__lease=lease).values_list("ends_at", flat=True)) == {
        lease.term_end
    }

    billing.billing_run(now=at(2026, 3, 9, 0, 10))
    (supplement,) = Invoice.objects.filter(lease=lease, kind=InvoiceKind.SUPPLEMENTARY)
    march = Invoice.objects.get(lease=lease, kind=InvoiceKind.RENT, period=dt.date(2026, 3, 1))
    assert (supplement.supplements, supplement.total) == (march, note.total)
    assert supplement.cause == f"notice_withdrawn:{notice.pk}"
    billed = sum(Invoice.objects.filter(lease=lease).values_list("total", flat=True))
    assert billed - note.total == 3 * Decimal("1250000000.00")  # January to March, whole


def test_a_second_notice_after_a_credit_is_withdrawn_as_before():
    lease, _ = credited_notice()
    billing.billing_run(now=at(2026, 3, 6, 0, 10))  # credits the first notice
    assert CreditNote.objects.filter(lease=lease).exists()
    second = notices.notice_give(lease=lease, party=Party.OPERATOR, now=at(2026, 3, 6, 12))
    notices.notice_withdraw_request(notice=second, party=Party.TENANT, now=at(2026, 3, 6, 13))
    notices.notice_withdraw_confirm(notice=second, party=Party.OPERATOR, now=at(2026, 3, 6, 14))
    second.refresh_from_db()
    assert second.status == NoticeStatus.WITHDRAWN
    # The first notice still binds: nothing to bill back.
    billing.billing_run(now=at(2026, 3, 7, 0, 10))
    assert not Invoice.objects.filter(lease=lease, kind=InvoiceKind.SUPPLEMENTARY).exists()


# --- 3. a handover to the renewal is a release --------------------------------------------------


def test_handover_to_renewal_emits_released_and_executes_reclaim(
    make_lease, django_capture_on_commit_callbacks
):
    lease = make_lease(nodes=6, approve_at=at(2026, 1, 1))
    line = lease.lines.get()
    decision = ReclaimDecision.objects.create(
        title="take back",
        scope_kind="lease",
        status=ReclaimStatus.NOTICE_ISSUED,
        notice_date=dt.date(2026, 1, 5),
        inputs={"parts": [{"days": 1, "lines": [line.pk]}]},
    )
    decision.lines.set([line])
    successor = services.lease_renew(lease=lease, now=at(2026, 5, 1))
    with django_capture_on_commit_callbacks(execute=True):
        boundaries.process_boundaries(now=at(2026, 6, 30))
    released = LeaseEvent.objects.get(lease=lease, kind=EventKind.LEASE_RELEASED)
    assert released.actor_party == Party.SYSTEM
    assert released.actor is None
    assert released.reason == f"handed over to renewal {successor.number}"
    assert released.data["released_at"] == lease.term_end.isoformat()
    assert released.data["successor"] == successor.number
    assert list(lease.events.values_list("kind", flat=True))[-2:] == [
        EventKind.LEASE_EXPIRED,
        EventKind.LEASE_RELEASED,
    ]
    decision.refresh_from_db()
    assert decision.status == ReclaimStatus.EXECUTED
    # Idempotent: a second run emits nothing more.
    boundaries.process_boundaries(now=at(2026, 7, 5))
    assert LeaseEvent.objects.filter(lease=lease, kind=EventKind.LEASE_RELEASED).count() == 1


def test_expiry_without_renewal_emits_no_release(make_lease):
    lease = make_lease(nodes=2, approve_at=at(2026, 1, 1))
    boundaries.process_boundaries(now=at(2026, 6, 30))
    assert not LeaseEvent.objects.filter(lease=lease, kind=EventKind.LEASE_RELEASED).exists()


# --- 4. the capacity view counts held nodes among the healthy ones ------------------------------


def test_capacity_view_free_count_ignores_held_nodes_that_are_down(client, operator):
    cluster = cluster_with_nodes(5)
    lease = short_lease(cluster, 3, dt.date(2026, 1, 1), term_days=60)
    held = sorted(nodes_of(lease))
    Node.objects.filter(pk=held[0]).update(status=NodeStatus.DOWN)  # held and down
    client.force_login(operator)
    response = client.get(reverse("admin:leasing_capacity"), {"at": "2026-01-15"})
    row = next(r for r in response.context["rows"] if r[0].pk == cluster.pk)
    c, _, free = row
    assert (c.n_nodes, c.n_healthy, c.n_held) == (5, 4, 2)
    free_now = allocation.free_node_ids(
        cluster.pk, at(2026, 1, 15), at(2026, 1, 16), now=at(2026, 1, 15)
    )
    assert free == 2 == len(free_now)
