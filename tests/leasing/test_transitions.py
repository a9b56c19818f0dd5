"""Every forbidden transition is refused with its code, and nothing is written."""

import datetime as dt

import pytest

from leasing import boundaries, notices, services
from leasing.choices import LeaseStatus, Party
from leasing.models import Lease

from .conftest import at
from .helpers import db_state

pytestmark = pytest.mark.django_db


def draft(tenant, listing):
    return services.lease_request(
        tenant=tenant,
        listing=listing,
        node_count=2,
        commencement_date=dt.date(2026, 1, 1),
        now=at(2025, 12, 1),
    )


def refused(code, call):
    before = db_state()
    with pytest.raises(Exception) as exc:
        call()
    assert getattr(exc.value, "code", None) == code, exc.value
    assert db_state() == before


def test_approve_and_reject_only_from_draft(make_lease):
    lease = make_lease(nodes=2)
    refused(
        "transition_not_allowed", lambda: services.lease_approve(lease=lease, now=at(2026, 1, 1))
    )
    refused(
        "transition_not_allowed", lambda: services.lease_reject(lease=lease, now=at(2026, 1, 1))
    )


def test_rejected_lease_cannot_be_approved(tenant, listing):
    lease = services.lease_reject(lease=draft(tenant, listing), now=at(2025, 12, 2))
    assert lease.status == LeaseStatus.VOID
    refused(
        "transition_not_allowed", lambda: services.lease_approve(lease=lease, now=at(2025, 12, 3))
    )
    refused(
        "notice_not_allowed",
        lambda: notices.notice_give(lease=lease, party=Party.TENANT, now=at(2025, 12, 3)),
    )


def test_approve_after_the_whole_term_is_refused(tenant, listing):
    lease = draft(tenant, listing)
    refused(
        "transition_not_allowed", lambda: services.lease_approve(lease=lease, now=at(2026, 7, 1))
    )


def test_activate_only_scheduled_and_not_before_commencement(tenant, listing, make_lease):
    lease = make_lease(nodes=2)
    refused(
        "transition_not_allowed", lambda: services.lease_activate(lease=lease, now=at(2025, 12, 31))
    )
    services.lease_activate(lease=lease, now=at(2026, 1, 1))
    refused(
        "transition_not_allowed", lambda: services.lease_activate(lease=lease, now=at(2026, 1, 2))
    )
    other = draft(tenant, listing)
    refused(
        "transition_not_allowed", lambda: services.lease_activate(lease=other, now=at(2026, 1, 2))
    )


def test_notice_refused_on_draft_and_on_ended_leases(tenant, listing, make_lease):
    lease = draft(tenant, listing)
    refused(
        "notice_not_allowed",
        lambda: notices.notice_give(lease=lease, party=Party.OPERATOR, now=at(2025, 12, 2)),
    )
    ended = make_lease(nodes=2)
    boundaries.process_boundaries(now=at(2026, 6, 30))
    ended.refresh_from_db()
    assert ended.status == LeaseStatus.EXPIRED
    refused(
        "notice_not_allowed",
        lambda: notices.notice_give(lease=ended, party=Party.TENANT, now=at(2026, 7, 1)),
    )


def test_notice_input_is_validated(make_lease, tenant, listing):
    lease = make_lease(nodes=2)
    refused(
        "validation_error",
        lambda: notices.notice_give(lease=lease, party=Party.SYSTEM, now=at(2026, 1, 2)),
    )
    refused(
        "validation_error",
        lambda: notices.notice_give(
            lease=lease,
            party=Party.TENANT,
            requested_end=dt.datetime(2026, 5, 1),  # naive
            now=at(2026, 1, 2),
        ),
    )
    foreign_line = make_lease(nodes=2).lines.get()
    refused(
        "validation_error",
        lambda: notices.notice_give(
            lease=lease, party=Party.TENANT, lines=[foreign_line], now=at(2026, 1, 2)
        ),
    )


def test_withdrawal_rules(make_lease):
    lease = make_lease(nodes=2)
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 1, 2))
    # Confirm without a request.
    refused(
        "withdrawal_not_allowed",
        lambda: notices.notice_withdraw_confirm(
            notice=notice, party=Party.OPERATOR, now=at(2026, 1, 3)
        ),
    )
    notices.notice_withdraw_request(notice=notice, party=Party.TENANT, now=at(2026, 1, 3))
    # A second request while one is pending.
    refused(
        "withdrawal_not_allowed",
        lambda: notices.notice_withdraw_request(
            notice=notice, party=Party.OPERATOR, now=at(2026, 1, 4)
        ),
    )
    # The requester cannot confirm its own request.
    refused(
        "withdrawal_not_allowed",
        lambda: notices.notice_withdraw_confirm(
            notice=notice, party=Party.TENANT, now=at(2026, 1, 4)
        ),
    )
    # Too late: the notice took effect.
    refused(
        "withdrawal_not_allowed",
        lambda: notices.notice_withdraw_confirm(
            notice=notice, party=Party.OPERATOR, now=notice.effective_end
        ),
    )


def test_moot_notice_cannot_be_withdrawn(make_lease):
    lease = make_lease(nodes=2)
    notice = notices.notice_give(lease=lease, party=Party.TENANT, now=at(2026, 4, 1))
    assert notice.status == "moot"
    refused(
        "withdrawal_not_allowed",
        lambda: notices.notice_withdraw_request(
            notice=notice, party=Party.TENANT, now=at(2026, 4, 2)
        ),
    )


def test_renewal_rules(make_lease, tenant, listing):
    unsigned = draft(tenant, listing)
    refused(
        "renewal_not_allowed", lambda: services.lease_renew(lease=unsigned, now=at(2025, 12, 2))
    )
    noticed = make_lease(nodes=2)
    notices.notice_give(lease=noticed, party=Party.TENANT, now=at(2026, 3, 1))  # in flight
    refused("renewal_not_allowed", lambda: services.lease_renew(lease=noticed, now=at(2026, 3, 2)))
    lease = make_lease(nodes=2)
    services.lease_renew(lease=lease, now=at(2026, 2, 1))
    refused("renewal_not_allowed", lambda: services.lease_renew(lease=lease, now=at(2026, 2, 2)))
    refused("renewal_not_allowed", lambda: services.lease_renew(lease=lease, now=at(2026, 7, 1)))


def test_renewal_refused_when_the_nodes_are_taken(make_lease):
    lease = make_lease(nodes=20)
    make_lease(nodes=20, commencement=dt.date(2026, 6, 30))
    refused("capacity_unavailable", lambda: services.lease_renew(lease=lease, now=at(2026, 2, 1)))


def test_release_rules(make_lease):
    lease = make_lease(nodes=2)
    refused(
        "release_not_allowed",
        lambda: services.lease_release_confirm(lease=lease, now=at(2026, 2, 1)),
    )
    boundaries.process_boundaries(now=at(2026, 6, 30))
    refused(
        "validation_error",
        lambda: services.lease_release_confirm(
            lease=lease, released_at=at(2026, 6, 29), now=at(2026, 6, 30, 5)
        ),
    )
    services.lease_release_confirm(lease=lease, now=at(2026, 6, 30, 5))
    refused(
        "release_not_allowed",
        lambda: services.lease_release_confirm(lease=lease, now=at(2026, 7, 1)),
    )
    assert Lease.objects.get(pk=lease.pk).status == LeaseStatus.CLOSED


def test_naive_clock_is_refused(make_lease):
    lease = make_lease(nodes=2)
    refused(
        "validation_error",
        lambda: notices.notice_give(lease=lease, party=Party.TENANT, now=dt.datetime(2026, 1, 2)),
    )


def test_listing_publish_and_withdraw_follow_their_transitions(cluster):
    from common.exceptions import TransitionNotAllowed
    from leasing.models import Listing
    from tests.factories.leasing import ListingFactory

    listing = ListingFactory(cluster=cluster, status="draft")
    assert services.listing_publish(listing=listing).status == "published"
    with pytest.raises(TransitionNotAllowed) as refused:
        services.listing_publish(listing=listing)
    assert refused.value.extra == {"status": "published"}
    assert services.listing_withdraw(listing=listing).status == "withdrawn"
    with pytest.raises(TransitionNotAllowed):
        services.listing_withdraw(listing=listing)
    assert Listing.objects.get(pk=listing.pk).status == "withdrawn", "a refusal writes nothing"
    assert services.listing_publish(listing=listing).status == "published"
