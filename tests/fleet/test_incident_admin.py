"""Incidents in the admin and the operator's incident queue (clusters/admin_fleet.py,
config/fleet/incidents.py): opened and resolved through the services with the operator
recorded; monitoring sources revoked; health events read only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from clusters import fleet
from clusters.choices import IncidentSource, IncidentStatus, NodeStatus
from clusters.ingest import HealthEventIn, health_events_ingest, monitoring_source_create
from clusters.models import HealthEvent, Incident, MonitoringSource, Node
from leasing.models import Allocation
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


@pytest.fixture
def superuser(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@x.example", "pw")
    client.force_login(user)
    return user


@pytest.fixture
def nodes():
    return list(cluster_with_nodes(3).nodes.order_by("pk"))


def test_an_operator_opens_an_incident_in_the_admin_and_is_recorded(client, superuser, nodes):
    node = nodes[0]
    response = client.post(
        reverse("admin:clusters_incident_add"),
        {
            "node": node.pk,
            "category": "power",
            "severity": "down",
            "description": "PDU B tripped",
            "evidence": "{}",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert (incident.source, incident.opened_by, incident.status) == (
        IncidentSource.OPERATOR,
        superuser,
        IncidentStatus.OPEN,
    )
    assert Node.objects.get(pk=node.pk).status == NodeStatus.DOWN


def test_resolving_asks_for_a_resolution_then_records_who(client, superuser, nodes):
    incident = fleet.incident_open(
        node=nodes[0], category="gpu", source="monitoring", now=timezone.now() - DAY
    )
    url = reverse("admin:clusters_incident_changelist")
    base = {"action": "resolve_selected", "_selected_action": [incident.pk]}
    first = client.post(url, base)
    assert first.status_code == 200
    assert "Resolve incidents" in first.content.decode()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN  # nothing yet
    empty = client.post(url, base | {"apply": "1", "resolution": ""})
    assert empty.status_code == 200
    assert Incident.objects.get().status == IncidentStatus.OPEN
    done = client.post(url, base | {"apply": "1", "resolution": "Reseated GPU 3"})
    assert done.status_code == 302
    incident.refresh_from_db()
    assert (incident.status, incident.resolution, incident.resolved_by) == (
        IncidentStatus.RESOLVED,
        "Reseated GPU 3",
        superuser,
    )
    assert LogEntry.objects.filter(object_id=str(incident.pk), user=superuser).exists()
    # Resolving it again is refused and named, not silently repeated.
    again = client.post(url, base | {"apply": "1", "resolution": "twice"}, follow=True)
    assert "incident_not_open" in again.content.decode()


def test_incidents_cannot_be_edited_or_deleted_by_hand(client, superuser, nodes):
    incident = fleet.incident_open(
        node=nodes[0], category="gpu", source="operator", now=timezone.now()
    )
    change = reverse("admin:clusters_incident_change", args=[incident.pk])
    client.post(change, {"category": "other", "description": "rewritten"})
    incident.refresh_from_db()
    assert (incident.category, incident.description) == ("gpu", "")
    assert (
        client.get(reverse("admin:clusters_incident_delete", args=[incident.pk])).status_code == 403
    )


def test_monitoring_sources_are_revoked_and_health_events_read_only(client, superuser, nodes):
    source, _ = monitoring_source_create(name="dcgm")
    health_events_ingest(
        source=source,
        items=[
            HealthEventIn(
                event_id="1",
                node=nodes[0].hostname,
                observed_at=timezone.now(),
                severity="down",
                category="gpu",
            )
        ],
    )
    event = HealthEvent.objects.get()
    page = client.get(reverse("admin:clusters_healthevent_changelist")).content.decode()
    assert nodes[0].hostname in page
    assert client.get(reverse("admin:clusters_healthevent_add")).status_code == 403
    client.post(reverse("admin:clusters_healthevent_change", args=[event.pk]), {"severity": "ok"})
    assert HealthEvent.objects.get().severity == "down"
    response = client.post(
        reverse("admin:clusters_monitoringsource_changelist"),
        {"action": "revoke", "_selected_action": [source.pk]},
    )
    assert response.status_code == 302
    assert MonitoringSource.objects.get().revoked_at is not None


def test_the_capacity_group_may_resolve_and_the_viewer_may_not(client, nodes):
    incident = fleet.incident_open(
        node=nodes[0], category="gpu", source="operator", now=timezone.now()
    )
    url = reverse("admin:clusters_incident_changelist")
    body = {
        "action": "resolve_selected",
        "_selected_action": [incident.pk],
        "apply": "1",
        "resolution": "fixed",
    }
    viewer = UserFactory(username="viewer-1", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    client.post(url, body)
    assert Incident.objects.get().status == IncidentStatus.OPEN
    capacity = UserFactory(username="capacity-1", is_staff=True)
    capacity.groups.add(Group.objects.get(name="capacity"))
    client.force_login(capacity)
    client.post(url, body)
    assert Incident.objects.get().status == IncidentStatus.RESOLVED


def test_the_queue_lists_open_first_with_who_holds_the_node(client, superuser, nodes):
    now = timezone.now()
    tenant = TenantFactory(name="Frontier Lab")
    lease = LeaseFactory(tenant=tenant, commencement_date=(now - 5 * DAY).date())
    line = LeaseLineFactory(lease=lease, cluster=nodes[0].cluster, node_count=1)
    Allocation.objects.create(line=line, node=nodes[0], starts_at=now - 5 * DAY, ends_at=now + DAY)
    old = fleet.incident_open(node=nodes[1], category="power", source="operator", now=now - 3 * DAY)
    fleet.incident_resolve(incident=old, now=now - 2 * DAY)
    fleet.incident_open(node=nodes[0], category="nvlink", source="tenant", now=now - DAY)
    url = reverse("operator:fleet-incidents")
    page = client.get(url).content.decode()
    assert page.index(nodes[0].hostname) < page.index(nodes[1].hostname)  # open first
    assert "Frontier Lab" in page
    assert lease.number in page
    assert "UTC" in page
    only_resolved = client.get(url, {"status": "resolved"}).content.decode()
    assert nodes[1].hostname in only_resolved
    assert nodes[0].hostname not in only_resolved
    by_site = client.get(url, {"site": nodes[0].cluster.site.slug, "category": "nvlink"})
    assert nodes[0].hostname in by_site.content.decode()
    assert client.get(url, {"status": "nonsense"}).status_code == 200  # ignored, not a 500


def test_the_queue_needs_the_view_incident_permission(client):
    client.force_login(UserFactory(username="nobody", is_staff=True))
    assert client.get(reverse("operator:fleet-incidents")).status_code == 403


def test_the_demo_has_an_open_tenant_incident_and_health_events(db):
    from django.core.management import call_command

    call_command("seed_demo", "--scale", "0.005", "--no-progress")
    tenant_reports = Incident.objects.filter(source=IncidentSource.TENANT, status="open")
    assert tenant_reports.count() == 1
    incident = tenant_reports.get()
    held = Allocation.objects.filter(
        node=incident.node, starts_at__lte=incident.opened_at, ends_at__gt=incident.opened_at
    )
    assert held.exists()
    assert HealthEvent.objects.count() > 10
    assert Incident.objects.filter(source=IncidentSource.MONITORING, status="resolved").exists()
    call_command("seed_demo", "--scale", "0.005", "--no-progress")  # a second run adds nothing
    assert Incident.objects.filter(source=IncidentSource.TENANT).count() == 1


def test_the_incident_list_names_each_incident_by_what_and_where(client, superuser, nodes):
    incident = fleet.incident_open(
        node=nodes[1], category="gpu", source="monitoring", now=timezone.now()
    )
    html = client.get(reverse("admin:clusters_incident_changelist")).content.decode()
    assert "column-id" not in html
    change = reverse("admin:clusters_incident_change", args=[incident.pk])
    label = f"{incident.get_category_display()} on {nodes[1].hostname}"
    assert f'<a href="{change}">{label}</a>' in html
