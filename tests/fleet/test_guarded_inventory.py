"""Guarded inventory in the admin (clusters/admin.py, clusters/guards.py; docs/rules/fleet.md,
"Guarded inventory"): held nodes keep their cluster and status and cannot be deleted; bulk
changes show the leases, tenants and rent they touch and ask to confirm."""

import datetime as dt

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from clusters.choices import MaintenanceStatus, NodeStatus
from clusters.models import MaintenanceWindow, Node
from common.models import DomainEvent
from common.money import format_money
from leasing import maintenance
from leasing.choices import DeferralStatus
from tests.factories.clusters import ClusterFactory, cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory

from .conftest import lease_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    """6 nodes: 3 held by Lab A from tomorrow (a scheduled lease holds), 3 free."""
    operator = UserFactory(username="guard-op", is_staff=True, is_superuser=True)
    client.force_login(operator)
    cluster = cluster_with_nodes(6)
    tenant = TenantFactory(name="Lab A", slug="lab-a")
    tomorrow = timezone.now().date() + dt.timedelta(days=1)
    lease = lease_of(tenant, cluster, 3, commencement=tomorrow)
    held = list(Node.objects.filter(allocations__line__lease=lease).order_by("pk"))
    free = list(cluster.nodes.exclude(pk__in=[n.pk for n in held]).order_by("pk"))
    return {
        "client": client,
        "operator": operator,
        "cluster": cluster,
        "lease": lease,
        "held": held,
        "free": free,
        "tenant": tenant,
    }


def _node_form(node, **changes):
    data = {
        "cluster": node.cluster_id,
        "hostname": node.hostname,
        "status": node.status,
        "note": node.note,
    }
    data.update(changes)
    return data


def test_a_held_node_keeps_its_cluster_and_status(world):
    client, node = world["client"], world["held"][0]
    other = ClusterFactory()
    url = reverse("admin:clusters_node_change", args=[node.pk])
    moved = client.post(url, _node_form(node, cluster=other.pk))
    assert moved.status_code == 200  # the form again, with the error
    page = moved.content.decode()
    assert "a held node cannot change cluster" in page
    assert world["lease"].number in page
    down = client.post(url, _node_form(node, status=NodeStatus.DOWN))
    assert "through an incident" in down.content.decode()
    node.refresh_from_db()
    assert (node.cluster_id, node.status) == (world["cluster"].pk, NodeStatus.ACTIVE)
    # Control: a free node may be edited.
    free = world["free"][0]
    done = client.post(
        reverse("admin:clusters_node_change", args=[free.pk]),
        _node_form(free, cluster=other.pk, status=NodeStatus.DOWN),
    )
    assert done.status_code == 302
    free.refresh_from_db()
    assert (free.cluster_id, free.status) == (other.pk, NodeStatus.DOWN)


def test_a_held_node_cannot_be_deleted(world):
    client, node = world["client"], world["held"][0]
    url = reverse("admin:clusters_node_delete", args=[node.pk])
    page = client.get(url).content.decode()
    assert "a held node cannot be" in page
    assert world["lease"].number in page
    client.post(url, {"post": "yes"})
    assert Node.objects.filter(pk=node.pk).exists()
    # Bulk delete: refused too.
    changelist = reverse("admin:clusters_node_changelist")
    response = client.post(
        changelist,
        {
            "action": "delete_selected",
            "_selected_action": [node.pk, world["free"][0].pk],
            "post": "yes",
        },
    )
    assert "a held node cannot be" in response.content.decode()
    assert Node.objects.filter(pk=node.pk).exists()


def test_a_bulk_status_change_shows_leases_tenants_and_rent_then_spares_held_nodes(world):
    client = world["client"]
    changelist = reverse("admin:clusters_node_changelist")
    selected = [n.pk for n in world["held"] + world["free"]]
    form = {"action": "mark_down", "_selected_action": selected}
    confirm = client.post(changelist, form)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    line = world["lease"].lines.get()
    assert world["lease"].number in page
    assert "Lab A" in page
    assert format_money(line.monthly_rate, world["lease"].currency) in page
    assert "<strong>6</strong> node(s) selected" in page
    assert "<strong>3</strong> will be changed" in page
    # Nothing changed before the confirmation.
    assert not Node.objects.filter(status=NodeStatus.DOWN).exists()
    done = client.post(changelist, {**form, "apply": "1"}, follow=True)
    assert done.status_code == 200
    statuses = dict(Node.objects.filter(pk__in=selected).values_list("pk", "status"))
    assert {statuses[n.pk] for n in world["free"]} == {NodeStatus.DOWN}
    assert {statuses[n.pk] for n in world["held"]} == {NodeStatus.ACTIVE}
    assert "left unchanged" in done.content.decode()
    logged = set(
        LogEntry.objects.filter(user=world["operator"]).values_list("object_id", flat=True)
    )
    assert logged == {str(n.pk) for n in world["free"]}


def test_select_all_across_pages_is_confirmed_too(world):
    client = world["client"]
    changelist = reverse("admin:clusters_node_changelist")
    query = f"?cluster__id__exact={world['cluster'].pk}"
    form = {
        "action": "mark_maintenance",
        "select_across": "1",
        "index": "0",
        "_selected_action": [world["free"][0].pk],
    }
    page = client.post(changelist + query, form).content.decode()
    assert 'name="select_across" value="1"' in page
    assert world["lease"].number in page
    client.post(changelist + query, {**form, "apply": "1"})
    assert Node.objects.filter(status=NodeStatus.MAINTENANCE).count() == 3


def test_moving_nodes_to_another_cluster_leaves_held_ones(world):
    client = world["client"]
    target = ClusterFactory()
    changelist = reverse("admin:clusters_node_changelist")
    form = {
        "action": "move_to_cluster",
        "_selected_action": [n.pk for n in world["held"] + world["free"]],
    }
    page = client.post(changelist, form).content.decode()
    assert world["lease"].number in page
    assert "Move to cluster" in page
    client.post(changelist, {**form, "apply": "1", "cluster": target.pk})
    assert set(target.nodes.all()) == set(world["free"])
    assert set(world["cluster"].nodes.all()) == set(world["held"])


def test_a_cluster_with_held_nodes_stays_on_its_campus(world):
    client, cluster = world["client"], world["cluster"]
    other_site = ClusterFactory().site
    response = client.post(
        reverse("admin:clusters_cluster_change", args=[cluster.pk]),
        {
            "site": other_site.pk,
            "name": cluster.name,
            "slug": cluster.slug,
            "accelerator": cluster.accelerator_id,
            "gpus_per_node": cluster.gpus_per_node,
            "fabric_gbps_per_gpu": cluster.fabric_gbps_per_gpu,
            "nodes-TOTAL_FORMS": "0",
            "nodes-INITIAL_FORMS": "0",
        },
    )
    assert "cannot move to another campus" in response.content.decode()
    cluster.refresh_from_db()
    assert cluster.site_id != other_site.pk


def _window_form(**changes):
    start = timezone.now() + dt.timedelta(days=9)
    data = {
        "title": "Firmware",
        "description": "",
        "scope": "cluster",
        "site": "",
        "cluster": "",
        "category": "firmware",
        "kind": "planned",
        "announced_at_0": timezone.now().strftime("%Y-%m-%d"),
        "announced_at_1": timezone.now().strftime("%H:%M:%S"),
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": "10:00:00",
        "ends_at_0": start.strftime("%Y-%m-%d"),
        "ends_at_1": "18:00:00",
    }
    data.update(changes)
    return data


def test_the_window_admin_writes_through_the_services(world, event_consumer):
    event_consumer(["maintenance.scheduled", "maintenance.changed"])
    client = world["client"]
    add = reverse("admin:clusters_maintenancewindow_add")
    bad = client.post(add, _window_form(cluster=world["cluster"].pk, ends_at_1="09:00:00"))
    assert bad.status_code == 200
    assert "ends after it starts" in bad.content.decode()
    empty = client.post(add, _window_form(scope="nodes"))
    assert "at least one node" in empty.content.decode()
    assert not MaintenanceWindow.objects.exists()
    done = client.post(add, _window_form(cluster=world["cluster"].pk))
    assert done.status_code == 302, done.content.decode()[:2000]
    window = MaintenanceWindow.objects.get()
    assert window.created_by == world["operator"]
    assert DomainEvent.objects.filter(kind="maintenance.scheduled", subject_id=window.pk).exists()
    # The changelist with its filters.
    changelist = reverse("admin:clusters_maintenancewindow_changelist")
    for query in (
        "",
        "?status__exact=scheduled",
        "?kind__exact=planned",
        f"?campus={world['cluster'].site_id}",
        f"?in_cluster={world['cluster'].pk}",
    ):
        page = client.get(changelist + query)
        assert page.status_code == 200
        assert "Firmware" in page.content.decode(), query
    # Cancel action records who.
    client.post(changelist, {"action": "cancel_selected", "_selected_action": [window.pk]})
    window.refresh_from_db()
    assert (window.status, window.updated_by) == (MaintenanceStatus.CANCELLED, world["operator"])


def test_deferrals_are_granted_and_denied_in_the_admin_by_someone(world):
    client = world["client"]
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        title="Power",
        scope="cluster",
        cluster=world["cluster"],
        category="power",
        kind="planned",
        announced_at=now,
        starts_at=world["lease"].commencement + dt.timedelta(days=3),
        ends_at=world["lease"].commencement + dt.timedelta(days=3, hours=2),
    )
    asked = maintenance.deferral_request(
        window=window,
        tenant=world["tenant"],
        requested_start=window.starts_at + dt.timedelta(days=1),
    )
    changelist = reverse("admin:leasing_maintenancedeferral_changelist")
    assert client.get(changelist).status_code == 200
    page = client.post(changelist, {"action": "deny_selected", "_selected_action": [asked.pk]})
    assert "Deny deferral requests" in page.content.decode()
    client.post(
        changelist,
        {
            "action": "deny_selected",
            "_selected_action": [asked.pk],
            "apply": "1",
            "note": "crew booked",
        },
    )
    asked.refresh_from_db()
    assert (asked.status, asked.decided_by, asked.decision_note) == (
        DeferralStatus.DENIED,
        world["operator"],
        "crew booked",
    )
    again = maintenance.deferral_request(
        window=window,
        tenant=world["tenant"],
        requested_start=window.starts_at + dt.timedelta(days=2),
    )
    client.post(changelist, {"action": "grant_selected", "_selected_action": [again.pk]})
    again.refresh_from_db()
    window.refresh_from_db()
    assert (again.status, again.decided_by) == (DeferralStatus.GRANTED, world["operator"])
    assert window.starts_at == again.requested_start
