"""Capacity timeline per cluster: nodes held per tenant per day, with notices marked."""

import datetime as dt

import pytest
from django.urls import reverse

from config import capacity
from leasing.models import Allocation, Notice
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, TenantFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def cluster():
    cluster = cluster_with_nodes(6, slug="pool-x")
    nodes = list(cluster.nodes.order_by("pk"))
    a = LeaseFactory(tenant=TenantFactory(name="A lab"), commencement_date=dt.date(2026, 1, 3))
    line_a = LeaseLineFactory(lease=a, cluster=cluster, node_count=4)
    b = LeaseFactory(tenant=TenantFactory(name="B lab"), commencement_date=dt.date(2026, 1, 5))
    line_b = LeaseLineFactory(lease=b, cluster=cluster, node_count=2)
    # A holds 4 nodes on days 2..5 (ends at day 6, half-open); B holds 2 from day 4 on.
    Allocation.objects.bulk_create(
        [
            Allocation(line=line_a, node=n, starts_at=START + 2 * DAY, ends_at=START + 6 * DAY)
            for n in nodes[:4]
        ]
        + [
            Allocation(line=line_b, node=n, starts_at=START + 4 * DAY, ends_at=START + 90 * DAY)
            for n in nodes[4:]
        ]
    )
    Notice.objects.create(
        lease=a,
        given_by="operator",
        received_at=START,
        notice_date=START.date(),
        effective_end=START + 6 * DAY,
        outcome="ends",
    )
    return cluster


def test_holdings_count_nodes_per_tenant_per_day_half_open(cluster, django_assert_num_queries):
    with django_assert_num_queries(1):
        days, series = capacity.holdings(cluster, START, START + 8 * DAY, now=START)
    assert len(days) == 9
    assert series == {
        "A lab": [0, 0, 4, 4, 4, 4, 0, 0, 0],
        "B lab": [0, 0, 0, 0, 2, 2, 2, 2, 2],
    }


def test_markers_include_notice_effective_dates_in_range(cluster):
    marks = capacity.markers(cluster, START, START + 30 * DAY)
    assert [(m["kind"], m["when"]) for m in marks] == [("notice effective", START + 6 * DAY)]
    assert capacity.markers(cluster, START + 7 * DAY, START + 30 * DAY) == []


def test_pages_render_for_staff(client, django_user_model, cluster):
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    index = client.get(reverse("operator:capacity")).content.decode()
    assert reverse("operator:capacity-cluster", args=["pool-x"]) in index
    page = client.get(reverse("operator:capacity-cluster", args=["pool-x"]))
    assert page.status_code == 200
    assert '<svg role="img"' in page.content.decode()
    assert client.get(reverse("operator:capacity-cluster", args=["nope"])).status_code == 404


def test_held_now_counts_at_this_instant_not_at_midnight(client, django_user_model):
    from django.utils import timezone

    cluster = cluster_with_nodes(3, slug="pool-now")
    lease = LeaseFactory(tenant=TenantFactory(name="Morning lab"))
    line = LeaseLineFactory(lease=lease, cluster=cluster, node_count=2)
    now = timezone.now()
    # Started a minute ago: after today's UTC midnight, so a midnight count would miss it.
    Allocation.objects.bulk_create(
        Allocation(line=line, node=n, starts_at=now - dt.timedelta(minutes=1), ends_at=now + DAY)
        for n in cluster.nodes.order_by("pk")[:2]
    )
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(reverse("operator:capacity-cluster", args=["pool-now"]))
    assert page.context["held_now"] == {"Morning lab": 2}
