"""One definition of held capacity: for a lease in every state, the allocator, the operator
dashboard and the capacity timeline agree node by node on which nodes are held (the rule is
`leasing.selectors.held_during` / `held_at`; docs/rules/lease.md, "Holdover").

The book is built through the services on a moving clock, so each lease reaches its state the
way it does in production: approvals, notices, a renewal, boundary runs and a release.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.choices import NodeStatus
from clusters.models import ALLOCATABLE_STATUSES, Cluster, Node
from config import capacity, dashboard
from leasing import allocation, boundaries, notices, selectors, services
from leasing.choices import LeaseStatus, LineStatus, Party
from leasing.models import Allocation, Lease
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

GPUS_PER_NODE = 8
LA = "America/Los_Angeles"  # local midnight is 07:00 UTC in July


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# The last boundary run is at 00:30 UTC; `NOW` is noon, before the next one would matter.
LAST_RUN = at(2026, 7, 10, 0, 30)
NOW = at(2026, 7, 10, 12)

# Each lease but the renewal is its own tenant, named for the state it is in at NOW (the
# timeline counts per tenant). HELD: the leases whose nodes are held at NOW.
HELD = (
    "scheduled, commenced before the boundary job",
    "active",
    "notice given",
    "ended, not yet released (drain grace)",
    "holdover",
    "past its end before the boundary job",
    "renewal of a handed-over lease",
    "partly ended (the line still running)",
)
NOT_HELD = (
    "scheduled, starting later",
    "closed (released)",
    "cancelled",
    "handed over to its renewal",
    "partly ended (the line ended by notice)",
)


@dataclass
class Book:
    cluster: Cluster
    leases: dict[str, Lease]
    nodes: dict[str, set[int]]  # the nodes each label's allocation rows name
    down: int  # a node nobody holds, down


def nodes_of(**filters: object) -> set[int]:
    return set(Allocation.objects.filter(**filters).values_list("node_id", flat=True))


@pytest.fixture
def book() -> Book:
    cluster = cluster_with_nodes(22, gpus_per_node=GPUS_PER_NODE)
    operator = UserFactory(username="ops", is_staff=True)
    leases: dict[str, Lease] = {}

    def deal(label, start, nodes, *, now, tz="UTC", more=()):
        lease = services.lease_create(
            tenant=TenantFactory(name=label),
            lines=[services.LineSpec(cluster, n, Decimal("1000.00")) for n in (nodes, *more)],
            commencement_date=start,
            contract_timezone=tz,
            actor=operator,
            now=now,
        )
        leases[label] = services.lease_approve(lease=lease, actor=operator, now=now)

    signed = at(2025, 12, 1)
    deal("closed (released)", dt.date(2026, 1, 1), 2, now=signed)
    deal("holdover", dt.date(2026, 1, 1), 3, now=signed)
    deal("ended, not yet released (drain grace)", dt.date(2026, 1, 11), 1, now=signed)
    deal("past its end before the boundary job", dt.date(2026, 1, 11), 2, now=signed, tz=LA)
    deal("handed over to its renewal", dt.date(2026, 1, 1), 1, now=signed)
    deal("partly ended (the line still running)", dt.date(2026, 3, 1), 1, now=signed, more=(2,))
    deal("notice given", dt.date(2026, 5, 1), 2, now=signed)
    deal("active", dt.date(2026, 6, 1), 1, now=signed)
    deal("cancelled", dt.date(2026, 6, 15), 1, now=signed)

    # A notice before commencement that ends on or before it: cancelled, rows deleted.
    notices.notice_give(lease=leases["cancelled"], party=Party.OPERATOR, now=at(2026, 3, 1))
    partly = leases["partly ended (the line still running)"]
    running_line, ended_line = partly.lines.order_by("pk")
    notices.notice_give(lease=partly, party=Party.TENANT, lines=[ended_line], now=at(2026, 3, 15))
    boundaries.process_boundaries(now=at(2026, 5, 15))
    notices.notice_give(lease=leases["notice given"], party=Party.TENANT, now=at(2026, 6, 1))
    leases["renewal of a handed-over lease"] = services.lease_renew(
        lease=leases["handed over to its renewal"], actor=operator, now=at(2026, 6, 1)
    )
    boundaries.process_boundaries(now=at(2026, 7, 1, 12))
    services.lease_release_confirm(
        lease=leases["closed (released)"], actor=operator, now=at(2026, 7, 1, 12)
    )
    deal("scheduled, starting later", dt.date(2026, 8, 1), 1, now=at(2026, 7, 2))
    deal(
        "scheduled, commenced before the boundary job",
        dt.date(2026, 7, 10),
        1,
        now=at(2026, 7, 2),
        tz=LA,
    )
    boundaries.process_boundaries(now=LAST_RUN)

    for lease in leases.values():
        lease.refresh_from_db()
    nodes = {label: nodes_of(line__lease=lease) for label, lease in leases.items()}
    nodes["partly ended (the line still running)"] = nodes_of(line=running_line)
    nodes["partly ended (the line ended by notice)"] = nodes_of(line=ended_line)
    idle = cluster.nodes.exclude(allocations__isnull=False).order_by("-pk")[0].pk
    Node.objects.filter(pk=idle).update(status=NodeStatus.DOWN)
    return Book(cluster, leases, nodes, idle)


def test_the_book_has_a_lease_in_every_state(book):
    """The scenario is what the other tests say it is (each label's state at NOW)."""
    s = {label: lease.status for label, lease in book.leases.items()}
    lease = book.leases
    assert s["scheduled, starting later"] == LeaseStatus.SCHEDULED
    commenced = lease["scheduled, commenced before the boundary job"]
    assert commenced.status == LeaseStatus.SCHEDULED
    assert commenced.commencement < NOW
    assert s["active"] == LeaseStatus.ACTIVE
    assert s["notice given"] == LeaseStatus.NOTICE_GIVEN
    draining = lease["ended, not yet released (drain grace)"]
    assert (draining.status, draining.released_at) == (LeaseStatus.EXPIRED, None)
    assert draining.end < NOW < draining.end + dt.timedelta(hours=draining.drain_grace_hours)
    assert (lease["holdover"].status, lease["holdover"].released_at) == (LeaseStatus.HOLDOVER, None)
    past = lease["past its end before the boundary job"]
    assert past.status == LeaseStatus.ACTIVE
    assert LAST_RUN < past.end < NOW
    assert s["closed (released)"] == LeaseStatus.CLOSED
    assert s["cancelled"] == LeaseStatus.CANCELLED
    assert book.nodes["cancelled"] == set(), "cancellation deleted its rows"
    handed = lease["handed over to its renewal"]
    assert (handed.status, handed.released_at) == (LeaseStatus.EXPIRED, handed.term_end)
    assert s["renewal of a handed-over lease"] == LeaseStatus.ACTIVE
    assert book.nodes["renewal of a handed-over lease"] == book.nodes["handed over to its renewal"]
    partly = lease["partly ended (the line still running)"]
    assert partly.status == LeaseStatus.ACTIVE
    assert [line.status for line in partly.lines.order_by("pk")] == [
        LineStatus.OPEN,
        LineStatus.ENDED,
    ]


def held_nodes(book: Book) -> set[int]:
    """The nodes held at NOW, from the book's own account of each lease (not from the rule)."""
    return set().union(*(book.nodes[label] for label in HELD))


def healthy(book: Book) -> set[int]:
    return set(
        book.cluster.nodes.filter(status__in=ALLOCATABLE_STATUSES).values_list("pk", flat=True)
    )


def allocator_refuses(
    book: Book, start: dt.datetime, end: dt.datetime, *, now: dt.datetime = NOW
) -> set[int]:
    """Healthy nodes the allocator would not hand out over `[start, end)`, judged at `now`."""
    free = allocation.free_node_ids(book.cluster.pk, start, end, now=now)
    return healthy(book) - set(free)


def disagreeing(book: Book, seen: set[int]) -> list[str]:
    """The lease states whose nodes `seen` (one page's held set) gets wrong."""
    out = [label for label in HELD if not book.nodes[label] <= seen]
    held = held_nodes(book)
    return out + [label for label in NOT_HELD if (book.nodes[label] - held) & seen]


def test_allocator_dashboard_and_timeline_agree_node_by_node(book):
    held = held_nodes(book)
    assert len(held) == 12
    assert book.down not in held

    refused = allocator_refuses(book, NOW, NOW + dt.timedelta(seconds=1))
    assert refused == held, disagreeing(book, refused)

    states = dict(dashboard.node_states(NOW).values_list("pk", "state"))
    leased = {pk for pk, state in states.items() if state == "leased"}
    assert leased == held, disagreeing(book, leased)

    reserved = {pk for pk, state in states.items() if state == "reserved"}
    assert reserved == book.nodes["scheduled, starting later"] - held
    assert {pk for pk, state in states.items() if state == "down"} == {book.down}
    free = {pk for pk, state in states.items() if state == "free"}
    later = allocator_refuses(book, NOW, NOW + dt.timedelta(days=365))
    assert free == healthy(book) - later, "free on the dashboard = never refused by the allocator"

    _, series = capacity.holdings(book.cluster, NOW, NOW, now=NOW)
    timeline = {tenant: counts[0] for tenant, counts in series.items() if counts[0]}
    expected: dict[str, int] = {}
    for label in HELD:  # a renewal's tenant is its predecessor's
        tenant = book.leases[label].tenant.name
        expected[tenant] = expected.get(tenant, 0) + len(book.nodes[label])
    assert timeline == expected


def test_holdover_nodes_are_not_free_on_the_dashboard(book):
    (row,) = dashboard.capacity(NOW)
    reserved = book.nodes["scheduled, starting later"] - held_nodes(book)
    assert row.gpus == {
        "leased": 12 * GPUS_PER_NODE,
        "reserved": len(reserved) * GPUS_PER_NODE,
        "down": GPUS_PER_NODE,
        "free": (22 - 12 - len(reserved) - 1) * GPUS_PER_NODE,
    }
    states = dict(dashboard.node_states(NOW).values_list("pk", "state"))
    assert {states[pk] for pk in book.nodes["holdover"]} == {"leased"}


def test_timeline_days_to_come_agree_with_the_allocator(book):
    """Every day of the next two months: the timeline's total equals the nodes the allocator
    refuses at that instant (holdover and draining nodes stay held until their release)."""
    today = NOW.replace(hour=0, minute=0)
    days, series = capacity.holdings(book.cluster, today, today + dt.timedelta(days=60), now=NOW)
    for i, day in enumerate(days):
        refused = allocator_refuses(book, day, day + dt.timedelta(seconds=1))
        assert sum(counts[i] for counts in series.values()) == len(refused), day
    assert series["holdover"][-1] == 3, "still held two months on: no release confirmed"


def test_admin_capacity_pages_agree_with_the_allocator(book, client):
    """The admin capacity pages take an as-of date and judge by the real clock; whatever that
    says, they count as held the nodes the allocator refuses at that instant."""
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    when = at(2026, 7, 10)
    refused = allocator_refuses(book, when, when + dt.timedelta(seconds=1), now=timezone.now())
    assert book.nodes["holdover"] <= refused
    assert book.nodes["ended, not yet released (drain grace)"] <= refused, "its end is `when`"
    response = client.get(reverse("admin:leasing_capacity"), {"at": "2026-07-10"})
    cluster, _, free = next(r for r in response.context["rows"] if r[0].pk == book.cluster.pk)
    assert cluster.n_held == len(refused)
    assert free == len(healthy(book) - refused)
    url = reverse("admin:leasing_capacity_cluster", args=[book.cluster.pk])
    response = client.get(url, {"at": "2026-07-10"})
    assert response.context["free_now"] == len(healthy(book) - refused)
    assert book.leases["holdover"].number in response.content.decode()


def test_fleet_scenario_leases_out_the_held_and_reserved_nodes(book):
    """The whole-fleet scenario (dashboard, `manage.py perfmodel`) splits each cluster into the
    GPUs under lease and the operator's own: holdover and draining nodes are not the
    operator's to train on. Rent stays the open lines' (holdover is not rent)."""
    gpus, rent = selectors.leased_gpus_by_cluster([book.cluster], now=NOW)
    under_lease = held_nodes(book) | book.nodes["scheduled, starting later"]
    assert gpus == {book.cluster.pk: len(under_lease) * GPUS_PER_NODE}
    renting = [
        label
        for label in (*HELD, "scheduled, starting later")
        if book.leases[label].status not in (LeaseStatus.EXPIRED, LeaseStatus.HOLDOVER)
    ]
    assert rent == Decimal("1000.00") * len(renting)
