"""Operator admin for the inventory: pages render with a bounded number of queries."""

import pytest
from django.urls import reverse

from clusters.demo import seed_inventory
from clusters.models import Cluster, Node, Site, SiteLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


CHANGELISTS = [
    "admin:clusters_acceleratormodel_changelist",
    "admin:clusters_site_changelist",
    "admin:clusters_sitelink_changelist",
    "admin:clusters_cluster_changelist",
    "admin:clusters_node_changelist",
]


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_the_fleet(
    staff_client, name, django_assert_max_num_queries
):
    seed_inventory(scale=0.002)
    with django_assert_max_num_queries(15) as small:
        assert staff_client.get(reverse(name)).status_code == 200
    seed_inventory(scale=0.02)  # ten times the rows
    with django_assert_max_num_queries(15) as large:
        response = staff_client.get(reverse(name))
    assert response.status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)


def test_site_page_shows_capacity_figures(staff_client):
    seed_inventory(scale=0.01)
    site = Site.objects.get(slug="campus-1")
    page = staff_client.get(reverse("admin:clusters_site_change", args=[site.pk])).content.decode()
    assert "H100 SXM: 1,000" in page  # 125 nodes × 8 GPUs at 1 % scale
    changelist = staff_client.get(reverse("admin:clusters_site_changelist")).content.decode()
    assert "2,000" in changelist  # campus 1: 125×8 + 60×8 + 5×72 + 20×8 GPUs


def test_cluster_page_lists_status_counts_and_problem_nodes(staff_client):
    seed_inventory(scale=0.005)
    cluster = Cluster.objects.get(slug="c1-h100")
    down = Node.objects.filter(cluster=cluster).order_by("hostname").first()
    down.status = "down"
    down.save()
    page = staff_client.get(
        reverse("admin:clusters_cluster_change", args=[cluster.pk])
    ).content.decode()
    assert "Down: 1" in page
    assert down.hostname in page


def test_link_page_shows_one_way_latency(staff_client):
    seed_inventory(scale=0.002)
    link = SiteLink.objects.get(bandwidth_gbps=200)
    page = staff_client.get(reverse("admin:clusters_sitelink_changelist")).content.decode()
    assert f"{link.one_way_latency_us:,.1f}" in page
    # The column title is written in capitals; its unit keeps its case (µs, not "MS").
    assert 'One-way latency (<span class="unit">µs</span>)' in page
    assert ".unit { text-transform: none; }" in page


def test_bulk_status_action_reports_changed_and_unchanged(staff_client):
    seed_inventory(scale=0.002)
    nodes = list(Node.objects.order_by("pk")[:3])
    nodes[0].status = "maintenance"
    nodes[0].save()
    form = {"action": "mark_maintenance", "_selected_action": [n.pk for n in nodes]}
    changelist = reverse("admin:clusters_node_changelist")
    # First the confirmation page (clusters/admin.py, NodeAdmin.bulk_change), changing nothing.
    confirm = staff_client.post(changelist, form).content.decode()
    assert "No lease holds any of these nodes" in confirm
    assert Node.objects.filter(pk=nodes[1].pk, status="active").exists()
    response = staff_client.post(changelist, {**form, "apply": "1"}, follow=True)
    assert "2 node(s) marked maintenance; 1 already were." in response.content.decode()
    assert Node.objects.filter(pk__in=[n.pk for n in nodes], status="maintenance").count() == 3
    assert Node.objects.get(pk=nodes[1].pk).status_changed_at is not None


def test_timezone_filter_lists_only_zones_in_use(staff_client):
    seed_inventory(scale=0.002)
    page = staff_client.get(reverse("admin:clusters_site_changelist")).content.decode()
    assert "America/Chicago" in page
    assert "Pacific/Chatham" not in page, "not every IANA zone"
