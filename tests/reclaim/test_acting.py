"""Acting on a decision: approval gives exactly the named notices once; rejection writes
nothing to leases; EXECUTED when the nodes are back; the nightly job flags flips."""

import datetime as dt
import json

import pytest
from rest_framework.test import APIClient

from common.models import DomainEvent
from leasing import boundaries as leasing_boundaries
from leasing import notices as leasing_notices
from leasing import services as leasing_services
from leasing.api_keys import api_key_create
from leasing.choices import LeaseStatus, NoticeOutcome
from leasing.events import EventKind
from leasing.models import LeaseEvent, Notice
from reclaim import services, tasks
from reclaim.choices import ReclaimStatus
from reclaim.services import (
    decision_approve,
    decision_create,
    decision_reject,
    decisions_mark_executed,
)
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory
from tests.leasing.helpers import db_state
from webhooks.services import lease_event_data

from .conftest import CHEAP, DEAR, SMALL_WORKLOAD, at, make_lease

pytestmark = pytest.mark.django_db

NOW = at(2026, 1, 5, 9)
NOTICE = dt.date(2026, 1, 10)


@pytest.fixture
def decision(staff):
    """Lease A whole (two lines), one of lease B's two lines, one moot line of lease C."""
    a, a_lines = make_lease((CHEAP, DEAR))
    b, b_lines = make_lease((CHEAP, DEAR))
    c, c_lines = make_lease((CHEAP,), commencement_date=dt.date(2025, 8, 1))  # ends 2026-01-28
    d = decision_create(
        title="take back",
        lines=[*a_lines, b_lines[0], *c_lines],
        notice_date=NOTICE,
        workload=SMALL_WORKLOAD,
        actor=staff,
        now=NOW,
    )
    return d, a, b, b_lines, c


def test_approving_issues_exactly_the_named_notices(decision, staff):
    d, a, b, b_lines, c = decision
    planned = services.planned_notices(d)
    assert [(p["lease_id"], p["lines"]) for p in planned] == [(a.pk, None), (b.pk, [b_lines[0].pk])]
    d = decision_approve(decision=d, actor=staff, now=NOW)
    assert d.status == ReclaimStatus.NOTICE_ISSUED
    assert d.decided_by == staff
    notices = list(Notice.objects.order_by("lease_id"))
    assert [n.lease_id for n in notices] == [a.pk, b.pk]
    assert set(d.notices.all()) == set(notices)
    whole, partial = notices
    assert list(whole.lines.all()) == []
    assert list(partial.lines.all()) == [b_lines[0]]
    for n in notices:
        assert n.given_by == "operator"
        assert n.effective_end == d.window_start == at(2026, 4, 11)
        assert n.outcome == NoticeOutcome.ENDS
    # Tenants hear of it through the leasing events (one notice.received per notice).
    assert LeaseEvent.objects.filter(kind=EventKind.NOTICE_RECEIVED).count() == 2
    a.refresh_from_db()
    assert a.effective_end == at(2026, 4, 11)
    assert a.status == LeaseStatus.NOTICE_GIVEN
    # No notice on the moot lease C.
    assert not Notice.objects.filter(lease=c).exists()


def test_approving_twice_gives_the_notices_once(decision, staff):
    d, *_ = decision
    decision_approve(decision=d, actor=staff, now=NOW)
    before = db_state()
    with pytest.raises(services.TransitionNotAllowed):
        decision_approve(decision=d, actor=staff, now=NOW)
    assert db_state() == before
    assert Notice.objects.count() == 2


def test_approval_after_the_notice_date_is_refused_and_writes_nothing(decision, staff):
    d, *_ = decision
    before = db_state()
    with pytest.raises(services.ReclaimStale):
        decision_approve(decision=d, actor=staff, now=at(2026, 1, 11, 9))
    assert db_state() == before
    d.refresh_from_db()
    assert d.status == ReclaimStatus.SCORED


def test_approval_is_refused_when_the_leases_moved_since_scoring(decision, staff):
    d, a, *_ = decision
    leasing_notices.notice_give(lease=a, party="tenant", now=at(2026, 1, 2))
    with pytest.raises(services.ReclaimStale):
        decision_approve(decision=d, actor=staff, now=NOW)
    assert Notice.objects.count() == 1  # the tenant's only


def test_rejecting_writes_nothing_to_leases(decision, staff):
    d, *_ = decision
    before = db_state()
    d = decision_reject(decision=d, reason="rent is worth more", actor=staff, now=NOW)
    assert d.status == ReclaimStatus.REJECTED
    assert d.reason == "rent is worth more"
    assert db_state() == before
    with pytest.raises(services.TransitionNotAllowed):
        decision_approve(decision=d, actor=staff, now=NOW)


def test_executed_once_every_reclaimed_line_is_back(
    decision, staff, django_capture_on_commit_callbacks
):
    d, a, *_ = decision
    decision_approve(decision=d, actor=staff, now=NOW)
    after_end = at(2026, 4, 11, 1)
    leasing_boundaries.process_boundaries(now=after_end)
    # B's line ended (its lease runs on); A's whole lease ended but its nodes are not back.
    assert decisions_mark_executed(now=after_end) == 0
    a.refresh_from_db()
    assert a.status == LeaseStatus.TERMINATED
    with django_capture_on_commit_callbacks(execute=True):
        leasing_services.lease_release_confirm(lease=a, now=at(2026, 4, 11, 6))
    d.refresh_from_db()
    assert d.status == ReclaimStatus.EXECUTED
    released = DomainEvent.objects.get(kind=EventKind.LEASE_RELEASED, subject_id=a.pk)
    assert released.deliveries.get(consumer="reclaim.executed").status == "done"
    assert d.executed_at == at(2026, 4, 11, 6)


def test_nightly_rescore_flags_a_flip_and_rolls_a_past_notice_date(staff):
    _, lines = make_lease((DEAR,))
    d = decision_create(
        title="watch", lines=lines, notice_date=NOTICE, workload=SMALL_WORKLOAD, now=NOW
    )
    assert d.recommendation == "keep_leased"
    lines[0].monthly_rate = CHEAP  # fresh prices: the rent falls
    lines[0].save()
    night = at(2026, 1, 12, 2)
    counts = services.decisions_rescore(now=night)
    assert counts["scored"] == 1
    assert counts["flipped"] == 1
    d.refresh_from_db()
    assert d.recommendation == "reclaim"
    assert d.previous_recommendation == "keep_leased"
    assert d.flipped_at == night
    assert d.notice_date == dt.date(2026, 1, 12)
    # A second run finds nothing new to flag.
    assert services.decisions_rescore(now=night)["flipped"] == 0


def test_the_task_rescores(staff):
    _, lines = make_lease((DEAR,))
    decision_create(title="t", lines=lines, notice_date=NOTICE, workload=SMALL_WORKLOAD, now=NOW)
    counts = tasks.rescore_reclaim_decisions.apply().get()
    assert counts["scored"] == 1


def test_tenants_read_a_neutral_reason_not_the_internal_decision(staff):
    """The decision's id and title are internal: the tenant's notice (API) and the notice
    webhook say only that the operator reclaims capacity; the decision still links them."""
    a, a_lines = make_lease((CHEAP,))
    d = decision_create(
        title="Project Falcon pre-training needs these GPUs",
        lines=a_lines,
        notice_date=NOTICE,
        workload=SMALL_WORKLOAD,
        actor=staff,
        now=NOW,
    )
    d = decision_approve(decision=d, actor=staff, now=NOW)
    notice = Notice.objects.get(lease=a)
    assert list(d.notices.all()) == [notice]
    assert notice.reason == services.TENANT_NOTICE_REASON
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(tenant=a.tenant, name='t')[1]}")
    response = client.get(f"/api/v1/leases/{a.pk}/notices/")
    assert response.status_code == 200
    (shown,) = response.json()["results"]
    assert shown["reason"] == services.TENANT_NOTICE_REASON
    event = DomainEvent.objects.get(subject_id=a.pk, kind=EventKind.NOTICE_RECEIVED)
    _, webhook_data = lease_event_data(event)
    for text in map(json.dumps, (response.json(), event.payload, webhook_data)):
        assert "Falcon" not in text
        assert "decision" not in text.lower()


def _tokyo_lease():
    lease = LeaseFactory(contract_timezone="Asia/Tokyo", commencement_date=dt.date(2026, 1, 1))
    line = LeaseLineFactory(
        lease=lease, cluster=cluster_with_nodes(10), node_count=10, monthly_rate=CHEAP
    )
    return lease, [line]


def test_nightly_rescore_rolls_to_the_leases_local_date_east_of_utc(staff):
    """At 20:00 UTC on 11 January it is already 12 January in Tokyo: a notice dated the UTC
    date would be refused as past at once, so the re-score moves it to Tokyo's date."""
    _, lines = _tokyo_lease()
    d = decision_create(
        title="tokyo", lines=lines, notice_date=NOTICE, workload=SMALL_WORKLOAD, now=NOW
    )
    evening = at(2026, 1, 11, 20)
    assert services.decisions_rescore(now=evening)["scored"] == 1
    d.refresh_from_db()
    assert d.notice_date == dt.date(2026, 1, 12)
    d = decision_approve(decision=d, actor=staff, now=evening)
    assert d.status == ReclaimStatus.NOTICE_ISSUED
    assert Notice.objects.get().notice_date == dt.date(2026, 1, 12)


def test_the_notice_date_floor_is_the_latest_local_today_of_the_zones():
    """The date approval checks against: not passed in any of the lines' zones."""
    night = at(2026, 1, 12, 2)  # 11 January 16:00 in Honolulu, 12 January 11:00 in Tokyo
    assert services.earliest_notice_date(["Pacific/Honolulu"], night) == dt.date(2026, 1, 11)
    assert services.earliest_notice_date(
        ["Pacific/Honolulu", "Asia/Tokyo", "UTC"], night
    ) == dt.date(2026, 1, 12)
    assert services.earliest_notice_date([], night) == dt.date(2026, 1, 12)
