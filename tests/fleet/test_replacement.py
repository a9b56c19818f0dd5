"""Replacement from spares (docs/rules/fleet.md, "Replacement"): leasing/replacement.py."""

import datetime as dt

import pytest

from clusters import fleet
from clusters.choices import NodeStatus
from clusters.demo import seed_inventory
from clusters.models import Node
from common.exceptions import DomainError
from leasing import replacement, services
from leasing.choices import SubstitutionPolicy
from leasing.demo import seed_leasing
from leasing.models import Allocation, LeaseEvent, Replacement
from tests.factories.clusters import SiteFactory, accelerator, cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory, published_listing

pytestmark = pytest.mark.django_db

UTC = dt.UTC
SWAP = dt.datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


def lease_on(cluster, nodes, *, policy=SubstitutionPolicy.SAME_CLUSTER, tenant=None):
    lease = services.lease_request(
        tenant=tenant or TenantFactory(),
        listing=published_listing(cluster),
        node_count=nodes,
        commencement_date=dt.date(2026, 1, 1),
        now=dt.datetime(2025, 12, 1, tzinfo=UTC),
    )
    lease = services.lease_approve(lease=lease, now=dt.datetime(2025, 12, 2, tzinfo=UTC))
    lease.lines.update(substitution_policy=policy)
    return lease


def failed(lease, *, incident=True):
    allocation = Allocation.objects.filter(line__lease=lease).order_by("node_id").first()
    if incident:
        fleet.incident_open(
            node=allocation.node,
            category="gpu",
            source="operator",
            now=SWAP - dt.timedelta(hours=2),
        )
    return allocation


def test_a_swap_ends_the_failed_allocation_and_starts_the_spare_pending_acceptance(
    event_consumer, django_capture_on_commit_callbacks
):
    seen = event_consumer([replacement.NODE_REPLACED])
    cluster = cluster_with_nodes(4)
    lease = lease_on(cluster, 2)
    allocation = failed(lease)
    old_end = allocation.ends_at
    actor = UserFactory(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        done = replacement.node_replace(
            allocation=allocation, now=SWAP, actor=actor, reason="GPU fell off the bus"
        )
    allocation.refresh_from_db()
    assert allocation.ends_at == SWAP
    spare = done.spare_allocation
    assert (spare.starts_at, spare.ends_at, spare.accepted_at) == (SWAP, old_end, None)
    assert spare.line_id == allocation.line_id
    assert spare.node.cluster_id == cluster.pk
    assert spare.node_id not in {allocation.node_id}
    # The lowest free node of the cluster: the two leased are the first two.
    assert spare.node_id == cluster.nodes.order_by("pk")[2].pk
    assert done.incident.node_id == allocation.node_id
    assert (done.actor, done.at, done.reason) == (actor, SWAP, "GPU fell off the bus")
    audit = LeaseEvent.objects.get(lease=lease, kind="node.replaced")
    assert (audit.actor, audit.at, audit.actor_party) == (actor, SWAP, "operator")
    assert audit.data["spare_hostname"] == spare.node.hostname
    (event,) = seen
    assert (event.subject, event.subject_id) == ("replacement", done.pk)
    assert event.payload == {
        "tenant": lease.tenant_id,
        "lease": lease.pk,
        "lease_number": lease.number,
        "line": allocation.line_id,
        "failed_node": allocation.node_id,
        "failed_hostname": allocation.node.hostname,
        "spare_node": spare.node_id,
        "spare_hostname": spare.node.hostname,
        "at": SWAP.isoformat(),
        "replacement": done.pk,
        "incident": done.incident_id,
    }
    # The failed node is free again after the swap (its incident still keeps it out).
    assert not Allocation.objects.filter(node=allocation.node, ends_at__gt=SWAP).exists()


def test_line_and_node_form_and_an_explicit_spare():
    cluster = cluster_with_nodes(4)
    lease = lease_on(cluster, 2)
    allocation = failed(lease)
    chosen = cluster.nodes.order_by("pk")[3]
    done = replacement.node_replace(
        line=allocation.line, node=allocation.node, spare=chosen, now=SWAP
    )
    assert done.spare_allocation.node == chosen
    assert done.failed_allocation.pk == allocation.pk


def nothing_written(lease):
    assert not Replacement.objects.exists()
    assert not LeaseEvent.objects.filter(kind="node.replaced").exists()
    assert Allocation.objects.filter(line__lease=lease).count() == lease.lines.get().node_count


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (dt.datetime(2025, 12, 15, tzinfo=UTC), "replacement_not_allowed"),  # not begun
        (dt.datetime(2026, 1, 1, tzinfo=UTC), "replacement_not_allowed"),  # its first instant
        (dt.datetime(2026, 7, 1, tzinfo=UTC), "replacement_not_allowed"),  # after its end
        (dt.datetime(2026, 2, 1, 9, 30), "validation_error"),  # naive
    ],
)
def test_refusals_of_the_instant_write_nothing(when, code):
    lease = lease_on(cluster_with_nodes(4), 2)
    allocation = failed(lease)
    with pytest.raises(DomainError) as exc:
        replacement.node_replace(allocation=allocation, now=when)
    assert exc.value.code == code
    nothing_written(lease)


def test_a_spare_must_fit_the_policy_be_healthy_and_free():
    site = SiteFactory()
    cluster = cluster_with_nodes(6, site=site)
    neighbour = cluster_with_nodes(2, site=site)  # same campus, same model
    lease = lease_on(cluster, 2)
    other = lease_on(cluster, 2)
    allocation = failed(lease)
    nodes = list(cluster.nodes.order_by("pk"))
    down, sick = nodes[4], nodes[5]
    Node.objects.filter(pk=down.pk).update(status=NodeStatus.DOWN)
    fleet.incident_open(
        node=sick, category="nvlink", source="monitoring", severity="degraded", now=SWAP
    )
    Node.objects.filter(pk=sick.pk).update(status=NodeStatus.ACTIVE)  # an incident alone refuses
    held = Allocation.objects.filter(line__lease=other).first().node
    cases = [
        (neighbour.nodes.first(), "policy"),
        (Node.objects.get(pk=down.pk), "not_healthy"),
        (Node.objects.get(pk=sick.pk), "incident"),
        (held, "held"),
        (allocation.node, "same_node"),
    ]
    for spare, why in cases:
        with pytest.raises(replacement.SpareNotAllowed) as exc:
            replacement.node_replace(allocation=allocation, spare=spare, now=SWAP)
        assert exc.value.extra["reason"] == why, spare
        nothing_written(lease)
    # A wider policy admits the neighbour cluster.
    lease.lines.update(substitution_policy=SubstitutionPolicy.SAME_CAMPUS)
    done = replacement.node_replace(allocation=allocation, spare=neighbour.nodes.first(), now=SWAP)
    assert done.spare_allocation.node.cluster_id == neighbour.pk


def test_no_spare_says_why_and_which_policy_would_find_one():
    h100 = accelerator("h100")
    site = SiteFactory()
    cluster = cluster_with_nodes(4, site=site, accelerator=h100)
    campus_twin = cluster_with_nodes(3, site=site, accelerator=h100)
    far_twin = cluster_with_nodes(5, accelerator=h100)  # another campus
    cluster_with_nodes(9, site=site, accelerator=accelerator("a100"))  # another model: never
    lease = lease_on(cluster, 3)
    allocation = failed(lease)
    Node.objects.filter(pk=cluster.nodes.order_by("pk")[3].pk).update(status=NodeStatus.MAINTENANCE)
    with pytest.raises(replacement.NoSpareAvailable) as exc:
        replacement.node_replace(allocation=allocation, now=SWAP)
    extra = exc.value.extra
    assert extra["policy"] == "same_cluster"
    assert (extra["needed"], extra["available"]) == (1, 0)
    (pool,) = extra["pools"]
    assert pool["cluster"] == cluster.pk
    assert (pool["nodes"], pool["held"], pool["in_incident"]) == (4, 3, 1)
    assert (pool["down"], pool["maintenance"], pool["free"]) == (1, 1, 0)
    assert extra["would_fit"] == [
        {
            "policy": "same_campus",
            "free": 3,
            "clusters": [{"cluster": campus_twin.pk, "name": str(campus_twin), "free": 3}],
        },
        {
            "policy": "same_model",
            "free": 5,
            "clusters": [{"cluster": far_twin.pk, "name": str(far_twin), "free": 5}],
        },
    ]
    nothing_written(lease)
    # Under same_model the search finds the campus twin first (lower id), then the far one.
    lease.lines.update(substitution_policy=SubstitutionPolicy.SAME_MODEL)
    done = replacement.node_replace(allocation=allocation, now=SWAP)
    assert done.spare_allocation.node.cluster_id == campus_twin.pk


def test_a_node_held_past_its_lease_end_is_no_spare():
    """An ended lease not yet released keeps its nodes (held_past_end): never a spare."""
    cluster = cluster_with_nodes(2)
    ended = services.lease_request(
        tenant=TenantFactory(),
        listing=published_listing(cluster, earliest_start=dt.date(2025, 7, 1)),
        node_count=1,
        commencement_date=dt.date(2025, 7, 1),
        now=dt.datetime(2025, 6, 1, tzinfo=UTC),
    )
    services.lease_approve(lease=ended, now=dt.datetime(2025, 6, 2, tzinfo=UTC))
    # Move it to the second node, so the lease below takes the first.
    Allocation.objects.filter(line__lease=ended).update(node=cluster.nodes.order_by("pk")[1])
    lease = lease_on(cluster, 1)
    allocation = failed(lease)
    ended_alloc = Allocation.objects.get(line__lease=ended)
    assert ended_alloc.ends_at < SWAP  # its rows ended; the lease was never released
    with pytest.raises(replacement.NoSpareAvailable) as exc:
        replacement.node_replace(allocation=allocation, now=SWAP)
    assert exc.value.extra["pools"][0]["held"] == 2


def test_batch_swaps_all_or_nothing():
    cluster = cluster_with_nodes(5)
    lease = lease_on(cluster, 3)
    allocations = list(Allocation.objects.filter(line__lease=lease).order_by("node_id"))
    with pytest.raises(replacement.NoSpareAvailable) as exc:
        replacement.nodes_replace(lease=lease, allocations=allocations, now=SWAP)
    assert (exc.value.extra["needed"], exc.value.extra["available"]) == (3, 2)
    nothing_written(lease)
    done = replacement.nodes_replace(lease=lease, allocations=allocations[:2], now=SWAP)
    assert len(done) == 2
    assert {r.spare_allocation.node_id for r in done} == set(
        cluster.nodes.order_by("pk").values_list("pk", flat=True)[3:]
    )
    assert all(r.incident is None for r in done)
    assert LeaseEvent.objects.filter(kind="node.replaced").count() == 2
    # Replacing an allocation already ended at the swap is refused.
    with pytest.raises(replacement.ReplacementNotAllowed):
        replacement.nodes_replace(lease=lease, allocations=allocations[:1], now=SWAP)


def test_an_allocation_of_another_lease_or_a_foreign_incident_is_refused():
    cluster = cluster_with_nodes(6)
    lease, other = lease_on(cluster, 2), lease_on(cluster, 2)
    mine = failed(lease)
    theirs = failed(other)
    with pytest.raises(replacement.ReplacementNotAllowed):
        replacement.nodes_replace(lease=lease, allocations=[theirs], now=SWAP)
    with pytest.raises(replacement.InvalidInput):
        replacement.node_replace(allocation=mine, incident=theirs.node.incidents.get(), now=SWAP)
    nothing_written(lease)


def test_the_demo_has_one_completed_replacement_and_is_idempotent():
    now = dt.datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    seed_inventory(scale=0.01)
    seed_leasing(scale=0.01, now=now)
    assert replacement.seed_demo_replacement(now=now) == {"replacements": 1}
    done = Replacement.objects.get()
    assert done.at == now - dt.timedelta(days=2)
    assert done.incident.status == "open"
    assert done.incident.node == done.failed_allocation.node
    assert done.failed_allocation.ends_at == done.at
    assert done.spare_allocation.accepted_at is None  # awaiting acceptance
    assert done.spare_allocation.node.cluster_id == done.line.cluster_id
    assert replacement.seed_demo_replacement(now=now) == {"replacements": 0}
    assert Replacement.objects.count() == 1


def test_one_call_may_swap_nodes_of_several_leases_under_one_lock_set():
    cluster = cluster_with_nodes(6)
    first, second = lease_on(cluster, 2), lease_on(cluster, 2)
    allocations = [failed(first), failed(second)]
    done = replacement.nodes_replace(allocations=allocations, now=SWAP, reason="rack B7")
    assert [r.line.lease_id for r in done] == [first.pk, second.pk]
    assert {r.spare_allocation.node_id for r in done} == set(
        cluster.nodes.order_by("pk").values_list("pk", flat=True)[4:]
    )
    audit = LeaseEvent.objects.filter(kind="node.replaced").order_by("lease_id")
    assert [(e.lease_id, e.data["lease_number"]) for e in audit] == [
        (first.pk, first.number),
        (second.pk, second.number),
    ]
    # Naming one lease refuses the other's allocations.
    with pytest.raises(replacement.ReplacementNotAllowed):
        replacement.nodes_replace(
            lease=first, allocations=[done[1].spare_allocation], now=SWAP + dt.timedelta(hours=1)
        )


def test_swaps_searched_separately_never_get_the_same_spare():
    """Two allocations ending at different instants are served by two spare queries: the
    second must leave out the spare the first took (it is not held yet)."""
    cluster = cluster_with_nodes(6)
    first = lease_on(cluster, 2)
    later = services.lease_approve(
        lease=services.lease_request(
            tenant=TenantFactory(),
            listing=published_listing(cluster),
            node_count=2,
            commencement_date=dt.date(2026, 1, 2),
            now=dt.datetime(2025, 12, 1, tzinfo=UTC),
        ),
        now=dt.datetime(2025, 12, 2, tzinfo=UTC),
    )
    allocations = [failed(first), failed(later)]
    assert allocations[0].ends_at != allocations[1].ends_at
    done = replacement.nodes_replace(allocations=allocations, now=SWAP)
    spares = [r.spare_allocation.node_id for r in done]
    assert len(set(spares)) == 2
    assert set(spares) == set(cluster.nodes.order_by("pk").values_list("pk", flat=True)[4:])
