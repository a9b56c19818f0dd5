"""A node with an open incident is never allocated anew (docs/rules/fleet.md, "Incidents")."""

import datetime as dt
from decimal import Decimal

import pytest

from clusters import fleet
from clusters.choices import IncidentSource, NodeStatus
from clusters.models import Node
from leasing import allocation, services
from leasing.exceptions import CapacityUnavailable
from leasing.models import Allocation
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _draft(cluster, nodes: int):
    return services.lease_create(
        tenant=TenantFactory(),
        lines=[services.LineSpec(cluster, nodes, Decimal("100"))],
        commencement_date=dt.date(2026, 11, 10),
        term_days=30,
        now=T0,
    )


def test_free_nodes_leave_out_a_node_with_an_open_incident_whatever_its_status(
    django_assert_num_queries,
):
    cluster = cluster_with_nodes(3)
    a, b, c = cluster.nodes.order_by("pk")
    fleet.incident_open(node=b, category="gpu", source=IncidentSource.TENANT, now=T0)
    # Even if its status were typed back to active (an old admin habit), the open incident
    # keeps it out: the rule reads the incident, not the status.
    Node.objects.filter(pk=b.pk).update(status=NodeStatus.ACTIVE)
    with django_assert_num_queries(1):
        free = allocation.free_node_ids(cluster.pk, T0, T0 + 30 * DAY, now=T0)
    assert free == [a.pk, c.pk]


def test_approval_skips_the_broken_node_and_refuses_when_only_it_is_left():
    cluster = cluster_with_nodes(3)
    a, b, c = cluster.nodes.order_by("pk")
    incident = fleet.incident_open(node=a, category="nvlink", source="operator", now=T0)
    Node.objects.filter(pk=a.pk).update(status=NodeStatus.ACTIVE)
    lease = services.lease_approve(lease=_draft(cluster, 2), now=T0 + DAY)
    held = set(Allocation.objects.filter(line__lease=lease).values_list("node_id", flat=True))
    assert held == {b.pk, c.pk}
    with pytest.raises(CapacityUnavailable):
        services.lease_approve(lease=_draft(cluster, 1), now=T0 + DAY)
    # Resolved: the node is allocatable again.
    fleet.incident_resolve(incident=incident, now=T0 + 2 * DAY)
    third = services.lease_approve(lease=_draft(cluster, 1), now=T0 + 2 * DAY)
    assert list(Allocation.objects.filter(line__lease=third).values_list("node_id", flat=True)) == [
        a.pk
    ]
