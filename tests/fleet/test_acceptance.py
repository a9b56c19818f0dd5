"""Acceptance records and phased hand-over (leasing/acceptance.py, docs/rules/fleet.md)."""

import datetime as dt
from decimal import Decimal

import pytest

from clusters import acceptance as th
from clusters.choices import IncidentCategory, IncidentSource, IncidentStatus, NodeStatus
from clusters.models import Incident
from common.models import DomainEvent
from leasing import acceptance
from leasing.choices import LineStatus
from leasing.models import AcceptanceRecord, Allocation
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 20, tzinfo=dt.UTC)


def _world(nodes: int = 4):
    cluster = cluster_with_nodes(nodes + 2)
    lease = LeaseFactory(commencement_date=dt.date(2026, 1, 1))
    line = LeaseLineFactory(
        lease=lease, cluster=cluster, node_count=nodes, monthly_rate=Decimal("400000.00")
    )
    held = list(cluster.nodes.order_by("hostname")[:nodes])
    Allocation.objects.bulk_create(
        Allocation(line=line, node=n, starts_at=lease.commencement, ends_at=lease.term_end)
        for n in held
    )
    return line, held, list(cluster.nodes.order_by("hostname")[nodes:])


def _good(line):
    t = th.thresholds_for(line.cluster, nodes=line.node_count)
    return [
        {"name": th.TEST_BUSBW, "measured": t.predicted_busbw_gbytes_per_s * 0.95},
        {"name": th.TEST_STEP, "measured": t.predicted_step_s * 1.05},
    ]


def _slow(line):
    t = th.thresholds_for(line.cluster, nodes=line.node_count)
    return [
        {"name": th.TEST_BUSBW, "measured": t.predicted_busbw_gbytes_per_s * 0.5},
        {"name": th.TEST_STEP, "measured": t.predicted_step_s},
    ]


def test_a_pass_accepts_the_node_and_says_so(event_consumer, django_capture_on_commit_callbacks):
    seen = event_consumer([acceptance.NODE_ACCEPTED])
    line, (node, *_), _ = _world()
    signer = UserFactory(username="burnin", is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        record = acceptance.acceptance_record(
            line=line,
            node=node,
            tests=_good(line),
            signed_at=T0,
            signed_by=signer,
            now=NOW,
            batch="rack-a",
        )
    assert record.passed
    assert record.incident is None
    assert record.signed_by == signer
    assert record.batch == "rack-a"
    busbw, step = record.tests
    assert set(busbw) == {
        "name",
        "measured",
        "threshold",
        "unit",
        "rule",
        "passed",
        "predicted",
        "size_bytes",
    }
    assert (busbw["unit"], busbw["rule"], busbw["passed"]) == ("GB/s", ">=", True)
    assert busbw["threshold"] == pytest.approx(0.9 * busbw["predicted"], rel=1e-6)
    assert (step["unit"], step["rule"], step["passed"]) == ("s", "<=", True)
    assert step["threshold"] == pytest.approx(1.1 * step["predicted"], rel=1e-6)
    allocation = Allocation.objects.get(line=line, node=node)
    assert allocation.accepted_at == T0
    (event,) = seen
    assert event.subject == "acceptance_record"
    assert event.subject_id == record.pk
    assert event.payload == {
        "tenant": line.lease.tenant_id,
        "lease": line.lease_id,
        "lease_number": line.lease.number,
        "line": line.pk,
        "node": node.pk,
        "hostname": node.hostname,
        "record": record.pk,
        "accepted_at": T0.isoformat(),
    }


def test_a_failure_opens_one_incident_until_a_retest_passes(event_consumer):
    event_consumer([acceptance.NODE_ACCEPTED, "incident.opened", "incident.resolved"])
    line, (node, *_), _ = _world()
    first = acceptance.acceptance_record(
        line=line, node=node, tests=_slow(line), signed_at=T0, signed_by=None, now=NOW
    )
    assert not first.passed
    assert [t["passed"] for t in first.tests] == [False, True]
    incident = first.incident
    assert incident.source == IncidentSource.ACCEPTANCE
    assert incident.category == IncidentCategory.PERFORMANCE
    assert incident.opened_at == T0
    assert incident.status == IncidentStatus.OPEN
    assert "nccl_all_reduce_busbw" in incident.description
    node.refresh_from_db()
    assert node.status == NodeStatus.DEGRADED
    assert Allocation.objects.get(line=line, node=node).accepted_at is None

    # A second failure keeps the same incident.
    second = acceptance.acceptance_record(
        line=line,
        node=node,
        tests=_slow(line),
        signed_at=T0 + dt.timedelta(hours=2),
        signed_by=None,
        now=NOW,
    )
    assert second.incident_id == incident.pk
    assert Incident.objects.filter(node=node).count() == 1

    # The retest passes: accepted, incident resolved, node back in service.
    third = acceptance.acceptance_record(
        line=line,
        node=node,
        tests=_good(line),
        signed_at=T0 + dt.timedelta(days=1),
        signed_by=None,
        now=NOW,
    )
    assert third.passed
    incident.refresh_from_db()
    node.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == T0 + dt.timedelta(days=1)
    assert node.status == NodeStatus.ACTIVE
    assert Allocation.objects.get(line=line, node=node).accepted_at == T0 + dt.timedelta(days=1)
    # Written in the same transactions (delivered after commit).
    kinds = list(DomainEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["incident.opened", "incident.resolved", "node.accepted"]


def test_a_burn_in_failure_is_a_gpu_incident_taking_the_node_down():
    line, (node, *_), _ = _world()
    record = acceptance.acceptance_record(
        line=line,
        node=node,
        tests=[{"name": th.TEST_BURN_IN, "measured": 1}],
        signed_at=T0,
        signed_by=None,
        now=NOW,
    )
    assert record.incident.category == IncidentCategory.GPU
    node.refresh_from_db()
    assert node.status == NodeStatus.DOWN


def test_the_latest_record_decides(event_consumer):
    event_consumer([acceptance.NODE_ACCEPTED])
    line, (node, *_), _ = _world()
    acceptance.acceptance_record(
        line=line, node=node, tests=_good(line), signed_at=T0, signed_by=None, now=NOW
    )
    # A backdated failure does not undo a later pass (and opens nothing).
    backdated = acceptance.acceptance_record(
        line=line,
        node=node,
        tests=_slow(line),
        signed_at=T0 - dt.timedelta(days=1),
        signed_by=None,
        now=NOW,
    )
    assert backdated.incident is None
    assert Allocation.objects.get(line=line, node=node).accepted_at == T0
    # A passing retest keeps the acceptance instant (rent follows it) and announces nothing.
    events_before = DomainEvent.objects.filter(kind=acceptance.NODE_ACCEPTED).count()
    acceptance.acceptance_record(
        line=line,
        node=node,
        tests=_good(line),
        signed_at=T0 + dt.timedelta(days=1),
        signed_by=None,
        now=NOW,
    )
    assert Allocation.objects.get(line=line, node=node).accepted_at == T0
    assert DomainEvent.objects.filter(kind=acceptance.NODE_ACCEPTED).count() == events_before
    # A later failure does.
    acceptance.acceptance_record(
        line=line,
        node=node,
        tests=_slow(line),
        signed_at=T0 + dt.timedelta(days=2),
        signed_by=None,
        now=NOW,
    )
    assert Allocation.objects.get(line=line, node=node).accepted_at is None


def _refused(exc_type, code, **kwargs):
    before = (
        AcceptanceRecord.objects.count(),
        Incident.objects.count(),
        DomainEvent.objects.count(),
    )
    with pytest.raises(exc_type) as info:
        acceptance.acceptance_record(**{"signed_by": None, "now": NOW, **kwargs})
    assert info.value.code == code
    after = (
        AcceptanceRecord.objects.count(),
        Incident.objects.count(),
        DomainEvent.objects.count(),
    )
    assert after == before
    assert not Allocation.objects.filter(accepted_at__isnull=False).exists()
    return info.value


def test_refusals_write_nothing():
    line, (node, *_), (spare, *_) = _world()
    good, slow = _good(line), _slow(line)
    e = _refused(
        acceptance.InvalidAcceptance,
        "invalid_acceptance",
        line=line,
        node=node,
        tests=good,
        signed_at=T0.replace(tzinfo=None),
    )
    assert e.extra["field"] == "signed_at"
    _refused(
        acceptance.InvalidAcceptance,
        "invalid_acceptance",
        line=line,
        node=node,
        tests=good,
        signed_at=NOW + dt.timedelta(seconds=1),
    )
    e = _refused(
        acceptance.NodeNotAllocated,
        "node_not_allocated",
        line=line,
        node=spare,
        tests=slow,
        signed_at=T0,
    )
    assert e.extra["hostname"] == spare.hostname
    # Before the allocation starts (the lease commences on 2026-01-01).
    _refused(
        acceptance.NodeNotAllocated,
        "node_not_allocated",
        line=line,
        node=node,
        tests=slow,
        signed_at=dt.datetime(2025, 12, 31, tzinfo=dt.UTC),
    )
    e = _refused(
        acceptance.InvalidAcceptance,
        "invalid_acceptance",
        line=line,
        node=node,
        tests=[{"name": "vibes", "measured": 1}],
        signed_at=T0,
    )
    assert e.extra["field"] == "tests[0].name"
    for bad in (
        [],
        [{"name": th.TEST_STEP}],
        [{"name": th.TEST_STEP, "measured": "fast"}],
        [{"name": th.TEST_STEP, "measured": float("nan")}],
        [{"name": th.TEST_STEP, "measured": 1.0, "threshold": 9}],
        [{"name": th.TEST_STEP, "measured": 1.0}, {"name": th.TEST_STEP, "measured": 1.0}],
        [{"name": th.TEST_BUSBW, "measured": 1.0, "size_bytes": 0}],
    ):
        _refused(
            acceptance.InvalidAcceptance,
            "invalid_acceptance",
            line=line,
            node=node,
            tests=bad,
            signed_at=T0,
        )
    # An ended line, or an allocation that ended before now.
    line.status = LineStatus.ENDED
    line.save()
    _refused(
        acceptance.AllocationEnded,
        "allocation_ended",
        line=line,
        node=node,
        tests=slow,
        signed_at=T0,
    )
    line.status = LineStatus.OPEN
    line.save()
    Allocation.objects.filter(line=line, node=node).update(ends_at=T0 + dt.timedelta(days=1))
    _refused(
        acceptance.AllocationEnded,
        "allocation_ended",
        line=line,
        node=node,
        tests=slow,
        signed_at=T0,
    )


def test_a_batch_with_one_bad_item_is_refused_whole_naming_it():
    line, held, (spare, *_) = _world()
    items = [
        acceptance.AcceptanceInput(line=line, node=n, tests=_good(line), signed_at=T0) for n in held
    ] + [acceptance.AcceptanceInput(line=line, node=spare, tests=_good(line), signed_at=T0)]
    with pytest.raises(acceptance.InvalidAcceptanceBatch) as info:
        acceptance.acceptance_import(items=items, signed_by=None, now=NOW)
    assert info.value.extra["errors"] == [
        {
            "item": 4,
            "hostname": spare.hostname,
            "code": "node_not_allocated",
            "detail": info.value.extra["errors"][0]["detail"],
        }
    ]
    assert not AcceptanceRecord.objects.exists()
    assert not Allocation.objects.filter(accepted_at__isnull=False).exists()
    records = acceptance.acceptance_import(items=items[:4], signed_by=None, now=NOW)
    assert len(records) == 4
    assert Allocation.objects.filter(accepted_at=T0).count() == 4


def test_handover_progress_in_batches(django_assert_num_queries):
    line, held, _ = _world(nodes=5)
    a, b, c, d, _e = held
    day = dt.timedelta(days=1)
    for node, at in ((a, T0), (b, T0 + dt.timedelta(hours=1))):
        acceptance.acceptance_record(
            line=line,
            node=node,
            tests=_good(line),
            signed_at=at,
            signed_by=None,
            now=NOW,
            batch="rack-1",
        )
    acceptance.acceptance_record(
        line=line,
        node=c,
        tests=_good(line),
        signed_at=T0 + day,
        signed_by=None,
        now=NOW,
        batch="rack-2",
    )
    acceptance.acceptance_record(
        line=line,
        node=d,
        tests=_slow(line),
        signed_at=T0 + day,
        signed_by=None,
        now=NOW,
        batch="rack-2",
    )
    other_line, _, _ = _world(nodes=2)
    with django_assert_num_queries(3):
        progress = acceptance.handover_progress()
    by_line = {p.line_id: p for p in progress}
    p = by_line[line.pk]
    assert (p.allocated, p.accepted, p.failed, p.pending) == (5, 3, 1, 1)
    assert (p.first_accepted_at, p.last_accepted_at) == (T0, T0 + day)
    assert [(b.batch, b.accepted, b.failed) for b in p.batches] == [
        ("rack-1", 2, 0),
        ("rack-2", 1, 1),
    ]
    assert not p.complete
    q = by_line[other_line.pk]
    assert (q.allocated, q.accepted, q.failed, q.pending, q.batches) == (2, 0, 0, 2, [])


def test_the_demo_hands_over_a_line_in_two_batches_with_one_failed_node():
    from django.core.management import call_command
    from django.utils import timezone

    call_command("seed_demo", "--scale", "0.005", "--no-progress")
    line = AcceptanceRecord.objects.select_related("allocation__line").first().allocation.line
    (progress,) = acceptance.handover_progress(lines=type(line).objects.filter(pk=line.pk))
    assert [b.batch for b in progress.batches] == ["rack-1", "rack-2"]
    assert progress.failed == 1
    assert progress.accepted == AcceptanceRecord.objects.filter(passed=True).count() >= 1
    failed = AcceptanceRecord.objects.get(passed=False)
    assert failed.incident.status == IncidentStatus.OPEN
    assert failed.signed_by.username == acceptance.DEMO_SIGNER
    # Every other running demo allocation was handed over with its lease, but the spare the
    # replacement demo swapped in, which waits for its own acceptance.
    others = Allocation.objects.exclude(line=line).filter(starts_at__lte=timezone.now())
    pending = others.filter(accepted_at__isnull=True)
    spares = Allocation.objects.filter(replacement_for__isnull=False)
    assert set(pending) == set(spares)
    before = AcceptanceRecord.objects.count()
    assert acceptance.seed_demo_handover(now=timezone.now()) == {"acceptance_records": 0}
    assert AcceptanceRecord.objects.count() == before
