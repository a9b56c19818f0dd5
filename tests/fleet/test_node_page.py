"""The node page (config/fleet/nodes.py) and the replacement admin (leasing/admin.py):
who holds node X and what happened to it; "Replace from a spare" in two steps."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clusters import fleet
from clusters.models import HealthEvent, MonitoringSource
from leasing import replacement, services
from leasing.models import Allocation, Replacement
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory, published_listing

pytestmark = pytest.mark.django_db


def staff(username, *groups):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def running_lease(cluster, nodes=2, tenant=None):
    """A lease on `cluster` that runs now (commenced a month ago, term of 180 days)."""
    today = timezone.now().date()
    lease = services.lease_request(
        tenant=tenant or TenantFactory(name="Acme Research"),
        listing=published_listing(cluster, earliest_start=today - dt.timedelta(days=60)),
        node_count=nodes,
        commencement_date=today - dt.timedelta(days=30),
        now=timezone.now() - dt.timedelta(days=40),
    )
    return services.lease_approve(lease=lease, now=timezone.now() - dt.timedelta(days=39))


def page(hostname):
    return reverse("operator:fleet-node", args=[hostname])


def test_a_node_that_never_had_anything_answers_200(client):
    node = cluster_with_nodes(1).nodes.get()
    client.force_login(staff("viewer", "viewer"))
    response = client.get(page(node.hostname))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nobody: the node is not held now." in body
    assert "Never allocated." in body
    assert "No incident." in body
    assert "Never replaced, never a spare." in body


def test_the_page_tells_who_holds_the_node_and_what_happened_to_it(client):
    cluster = cluster_with_nodes(3)
    lease = running_lease(cluster)
    failed = Allocation.objects.filter(line__lease=lease).order_by("node_id").first()
    node = failed.node
    swap_at = timezone.now() - dt.timedelta(hours=1)
    incident = fleet.incident_open(
        node=node, category="gpu", source="operator", now=swap_at - dt.timedelta(hours=2)
    )
    source = MonitoringSource.objects.create(name="dcgm", prefix="dcgm", key_hash="x" * 64)
    HealthEvent.objects.create(
        source=source,
        event_id="e-1",
        node=node,
        observed_at=swap_at - dt.timedelta(hours=3),
        received_at=swap_at - dt.timedelta(hours=3),
        severity="down",
        message="Xid 79: GPU has fallen off the bus",
    )
    operator = staff("cap", "capacity")
    done = replacement.node_replace(allocation=failed, now=swap_at, actor=operator)
    spare = done.spare_allocation.node
    client.force_login(staff("viewer", "viewer"))

    with CaptureQueriesContext(connection) as queries:
        body = client.get(page(node.hostname)).content.decode()
    assert len(queries) <= 12, [q["sql"][:80] for q in queries]  # whatever the history
    assert "Nobody: the node is not held now." in body  # replaced an hour ago
    assert lease.number in body
    assert "Acme Research" in body
    assert reverse("admin:clusters_incident_change", args=[incident.pk]) in body
    assert "replaced (out)" in body
    assert spare.hostname in body
    assert "Xid 79: GPU has fallen off the bus" in body
    assert " UTC" in body  # instants name their zone
    assert reverse("admin:leasing_replacement_change", args=[done.pk]) in body
    assert reverse("admin:leasing_lease_change", args=[lease.pk]) in body

    body = client.get(page(spare.hostname)).content.decode()
    assert "brought in as spare" in body
    holder = body.split('data-testid="holder"')[1].split("</section>")[0]
    assert lease.number in holder
    assert "Acme Research" in holder
    assert "pending" in holder  # the spare goes to acceptance


def test_search_finds_by_hostname(client):
    cluster = cluster_with_nodes(3)
    nodes = list(cluster.nodes.order_by("hostname"))
    client.force_login(staff("viewer", "viewer"))
    search = reverse("operator:fleet-node-search")
    exact = client.get(search, {"q": nodes[1].hostname.upper()})
    assert exact.status_code == 302
    assert exact["Location"] == page(nodes[1].hostname)
    many = client.get(search, {"q": cluster.slug}).content.decode()
    assert all(n.hostname in many for n in nodes)
    assert "No node" in client.get(search, {"q": "nowhere"}).content.decode()
    assert client.get(search).status_code == 200


def test_permissions_of_the_node_page(client):
    node = cluster_with_nodes(1).nodes.get()
    for url in (page(node.hostname), reverse("operator:fleet-node-search")):
        client.logout()
        anonymous = client.get(url)
        assert anonymous.status_code == 302
        assert reverse("admin:login") in anonymous["Location"]
        client.force_login(staff("nobody-" + str(len(url))))
        assert client.get(url).status_code == 403
        client.force_login(staff("finance-" + str(len(url)), "finance"))
        assert client.get(url).status_code == 403
        for role in ("viewer", "capacity", "planner"):
            client.force_login(staff(f"{role}-{len(url)}", role))
            assert client.get(url).status_code == 200, role
    client.force_login(staff("viewer-404", "viewer"))
    assert client.get(page("no-such-node")).status_code == 404


# --- the admin -----------------------------------------------------------------------------------


def test_allocation_admin_lists_who_holds_a_node(client):
    cluster = cluster_with_nodes(3)
    lease = running_lease(cluster)
    node = Allocation.objects.filter(line__lease=lease).first().node
    client.force_login(staff("viewer", "viewer"))
    changelist = reverse("admin:leasing_allocation_changelist")
    body = client.get(changelist, {"q": node.hostname}).content.decode()
    assert lease.number in body
    assert "Acme Research" in body
    assert client.get(changelist, {"q": lease.number}).status_code == 200
    assert client.get(reverse("admin:leasing_replacement_changelist")).status_code == 200


def test_replace_from_a_spare_in_two_steps_records_the_actor(client):
    cluster = cluster_with_nodes(3)
    lease = running_lease(cluster)
    failed = Allocation.objects.filter(line__lease=lease).order_by("node_id").first()
    fleet.incident_open(
        node=failed.node,
        category="nvlink",
        source="operator",
        now=timezone.now() - dt.timedelta(hours=1),
    )
    spare = cluster.nodes.order_by("pk")[2]
    changelist = reverse("admin:leasing_allocation_changelist")
    chosen = {"action": "replace_from_spare", "_selected_action": [failed.pk]}

    # A viewer is not offered the action: posting it writes nothing.
    client.force_login(staff("viewer", "viewer"))
    client.post(changelist, chosen)
    client.post(changelist, {**chosen, "apply": "1", "at": timezone.now().isoformat()})
    assert not Replacement.objects.exists()

    operator = staff("cap", "capacity")
    client.force_login(operator)
    step1 = client.post(changelist, chosen)
    assert step1.status_code == 200
    body = step1.content.decode()
    for shown in (failed.node.hostname, spare.hostname, lease.number, "Acme Research", "UTC"):
        assert shown in body, shown
    # The open incident is named and linked, not shown as a bare number.
    incident = failed.node.incidents.get()
    assert reverse("admin:clusters_incident_change", args=[incident.pk]) in body
    assert f"#{incident.pk}" not in body
    assert not Replacement.objects.exists()  # the first step writes nothing
    at = step1.context["form"].initial["at"]
    step2 = client.post(
        changelist,
        {
            **chosen,
            "apply": "1",
            "at": at.strftime("%Y-%m-%d %H:%M:%S"),
            "reason": "NVLink errors",
            f"spare_{failed.pk}": spare.pk,
        },
    )
    assert step2.status_code == 302
    done = Replacement.objects.get()
    assert done.actor == operator
    assert done.at == at
    assert done.reason == "NVLink errors"
    assert done.spare_allocation.node == spare
    assert done.incident.node == failed.node


def test_the_confirmation_says_why_no_spare_fits(client):
    cluster = cluster_with_nodes(2)
    lease = running_lease(cluster, nodes=2)
    failed = Allocation.objects.filter(line__lease=lease).first()
    cluster_with_nodes(2, site=cluster.site, accelerator=cluster.accelerator)
    client.force_login(staff("cap", "capacity"))
    body = client.post(
        reverse("admin:leasing_allocation_changelist"),
        {"action": "replace_from_spare", "_selected_action": [failed.pk]},
    ).content.decode()
    assert "No spare fits" in body
    assert "2 held" in body
    assert "Policy same_campus would find 2" in body


def test_several_rows_are_offered_distinct_spares_and_all_swapped(client):
    cluster = cluster_with_nodes(4)
    lease = running_lease(cluster, nodes=2)
    rows = list(Allocation.objects.filter(line__lease=lease).order_by("pk"))
    operator = staff("cap", "capacity")
    client.force_login(operator)
    changelist = reverse("admin:leasing_allocation_changelist")
    chosen = {"action": "replace_from_spare", "_selected_action": [a.pk for a in rows]}
    step1 = client.post(changelist, chosen)
    proposals = step1.context["proposals"]
    spares = [p.spare.pk for p in proposals]
    assert len(set(spares)) == 2
    at = step1.context["form"].initial["at"]
    client.post(
        changelist,
        {
            **chosen,
            "apply": "1",
            "at": at.strftime("%Y-%m-%d %H:%M:%S"),
            **{f"spare_{p.allocation.pk}": p.spare.pk for p in proposals},
        },
    )
    assert sorted(Replacement.objects.values_list("spare_allocation__node_id", flat=True)) == (
        sorted(spares)
    )
    assert set(Replacement.objects.values_list("actor", flat=True)) == {operator.pk}


def test_a_lease_line_has_a_page_with_its_nodes_and_history(client):
    """Who holds what on a line, and what happened to it: allocations, acceptance, the swap,
    a notice; linked from the lease and to every allocation of the line."""
    from leasing import acceptance, notices
    from leasing.choices import Party

    cluster = cluster_with_nodes(4)
    lease = running_lease(cluster, nodes=3)
    line = lease.lines.get()
    operator = staff("cap", "capacity")
    first = Allocation.objects.filter(line=line).order_by("node_id").first()
    acceptance.acceptance_record(
        line=line,
        node=first.node,
        tests=[{"name": "gpu_burn_in", "measured": 0}],
        signed_at=timezone.now() - dt.timedelta(days=2),
        signed_by=operator,
        now=timezone.now() - dt.timedelta(days=2),
    )
    fleet.incident_open(
        node=first.node,
        category="gpu",
        source="operator",
        now=timezone.now() - dt.timedelta(hours=3),
    )
    done = replacement.node_replace(
        allocation=first, now=timezone.now() - dt.timedelta(hours=1), actor=operator
    )
    notices.notice_give(lease=lease, party=Party.TENANT)
    client.force_login(staff("viewer", "viewer"))

    url = reverse("admin:leasing_leaseline_change", args=[line.pk])
    assert (
        url in client.get(reverse("admin:leasing_lease_change", args=[lease.pk])).content.decode()
    )
    with CaptureQueriesContext(connection) as queries:
        body = client.get(url).content.decode()
    assert len(queries) <= 20, [q["sql"][:80] for q in queries]
    assert "3 held, 0 accepted" in body  # the accepted node was swapped out for a pending spare
    assert f"?line={line.pk}" in body
    assert "<td>allocated</td><td>3 node(s)</td>" in body  # the hand-over
    assert "<td>allocated</td><td>1 node(s)</td>" in body  # the spare
    assert "<td>accepted</td><td>1 node(s)</td>" in body
    assert "<td>released</td><td>1 node(s)</td>" in body  # the failed node, at the swap
    assert f"{first.node.hostname} → {done.spare_allocation.node.hostname}" in body
    assert "<td>notice (" in body
    assert "by the tenant, effective" in body
    listing = client.get(reverse("admin:leasing_leaseline_changelist")).content.decode()
    assert lease.number in listing
    assert "Acme Research" in listing
    every = client.get(reverse("admin:leasing_allocation_changelist"), {"line": line.pk})
    assert every.status_code == 200
    assert done.spare_allocation.node.hostname in every.content.decode()
    # Read-only: nobody edits a line by hand.
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    assert client.post(url, {"node_count": 99}).status_code == 403
    line.refresh_from_db()
    assert line.node_count == 3
