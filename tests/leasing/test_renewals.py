"""Notices and renewals (docs/rules/lease.md): a moot notice does not block renewal; a notice
that ends a renewed lease early cancels its renewal, which commences after the effective end."""

import pytest

from leasing import allocation, boundaries, notices, services
from leasing.choices import LeaseStatus, LineStatus, NoticeOutcome, Party
from leasing.models import Allocation

from .conftest import at

pytestmark = pytest.mark.django_db


def held(lease) -> list[tuple]:
    return sorted(
        Allocation.objects.filter(line__lease=lease).values_list("node_id", "starts_at", "ends_at")
    )


def test_a_moot_notice_does_not_block_renewal(make_lease):
    lease = make_lease(nodes=2, approve_at=at(2026, 1, 1))
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 4, 1))
    assert notice.outcome == NoticeOutcome.MOOT
    successor = services.lease_renew(lease=lease, now=at(2026, 4, 2))
    assert (successor.predecessor, successor.commencement) == (lease, lease.term_end)
    assert successor.status == LeaseStatus.SCHEDULED


def test_a_notice_ending_a_renewed_lease_early_cancels_the_renewal(make_lease):
    lease = make_lease(nodes=4, approve_at=at(2026, 1, 1))
    successor = services.lease_renew(lease=lease, now=at(2026, 2, 1))
    nodes = {node for node, _, _ in held(lease)}
    assert {node for node, _, _ in held(successor)} == nodes

    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 2, 15, 10))
    assert (notice.outcome, notice.effective_end) == (NoticeOutcome.ENDS, at(2026, 5, 17))
    lease.refresh_from_db()
    successor.refresh_from_db()
    assert lease.effective_end == at(2026, 5, 17)  # the predecessor ends as usual
    # The renewal would commence at the old term end, after the effective end: it holds
    # nothing from now on, so the nodes are free after May 17th.
    assert successor.end == successor.commencement == at(2026, 6, 30)
    assert held(successor) == []
    free = allocation.free_node_ids(
        lease.lines.get().cluster_id, at(2026, 5, 17), at(2026, 9, 1), now=at(2026, 2, 16)
    )
    assert nodes <= set(free)
    event = lease.events.get(kind="notice.received")
    assert event.data["cancels_successor"] == successor.number

    boundaries.process_boundaries(now=at(2026, 5, 17))
    lease.refresh_from_db()
    assert lease.status == LeaseStatus.TERMINATED
    boundaries.process_boundaries(now=at(2026, 6, 30))
    successor.refresh_from_db()
    assert successor.status == LeaseStatus.CANCELLED
    assert set(successor.lines.values_list("status", flat=True)) == {LineStatus.CANCELLED}


def test_withdrawing_the_notice_brings_the_renewal_back(make_lease):
    lease = make_lease(nodes=4, approve_at=at(2026, 1, 1))
    successor = services.lease_renew(lease=lease, now=at(2026, 2, 1))
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 2, 15, 10))
    notices.notice_withdraw_request(notice=notice, party=Party.TENANT, now=at(2026, 3, 1))
    notices.notice_withdraw_confirm(notice=notice, party=Party.OPERATOR, now=at(2026, 3, 2))
    lease.refresh_from_db()
    successor.refresh_from_db()
    assert (lease.effective_end, successor.effective_end) == (None, None)
    assert len(held(successor)) == 4
    assert {(s, e) for _, s, e in held(successor)} == {(successor.commencement, successor.term_end)}
    boundaries.process_boundaries(now=at(2026, 6, 30))
    successor.refresh_from_db()
    assert successor.status == LeaseStatus.ACTIVE


def test_line_notices_that_end_every_line_cancel_the_renewal_too(make_lease):
    """When every line is bound the lease ends with its last line, before the renewal."""
    lease = make_lease(nodes=4, approve_at=at(2026, 1, 1))
    successor = services.lease_renew(lease=lease, now=at(2026, 2, 1))
    line = lease.lines.get()
    notices.notice_give(lease=lease, party=Party.TENANT, lines=[line], now=at(2026, 2, 15))
    successor.refresh_from_db()
    lease.refresh_from_db()
    assert lease.effective_end == at(2026, 5, 17)
    assert successor.end == successor.commencement
    assert held(successor) == []
