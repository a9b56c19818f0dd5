"""A whole campus in maintenance and another down: every operator page still answers, in a
real browser (docs/rules/fleet.md, "Guarded inventory": the pages stay usable when an entire
campus is out). The dashboard used to answer 500 here: the fleet scenario kept the links of a
campus left without any running pool."""

import datetime as dt

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from billing.demo import seed_billing
from billing.models import Invoice
from clusters import fleet
from clusters.choices import NodeStatus
from clusters.demo import seed_inventory
from clusters.models import Cluster, MaintenanceWindow, Node, Site
from leasing.demo import seed_leasing
from leasing.maintenance import seed_demo_maintenance
from reclaim.demo import seed_reclaim
from reclaim.models import ReclaimDecision

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ERROR_TEXT = ("Server Error", "Traceback", "Exception Value", "Page not found", "Forbidden")


def _pages() -> list[str]:
    """Every operator page a GET opens, with sample arguments, and every admin changelist."""
    cluster = Cluster.objects.filter(site__slug="campus-1").order_by("pk").first()
    decision = ReclaimDecision.objects.order_by("pk").first()
    invoice = Invoice.objects.exclude(number="").order_by("pk").first()
    window = MaintenanceWindow.objects.order_by("pk").first()
    node = Node.objects.filter(cluster__site__slug="campus-1").order_by("pk").first()
    pages = [
        reverse("operator:dashboard"),
        reverse("operator:capacity"),
        reverse("operator:capacity-cluster", args=[cluster.slug]),
        reverse("operator:fleet-maintenance"),
        reverse("operator:reclaim:list"),
        reverse("billing:revenue"),
        reverse("admin:leasing_capacity"),
        reverse("admin:leasing_capacity_cluster", args=[cluster.pk]),
        reverse("admin:index"),
        reverse("admin:clusters_cluster_change", args=[cluster.pk]),
        reverse("admin:clusters_node_change", args=[node.pk]),
        reverse("admin:clusters_maintenancewindow_change", args=[window.pk]),
        reverse("admin:clusters_site_change", args=[cluster.site_id]),
    ]
    if decision is not None:
        pages.append(reverse("operator:reclaim:detail", args=[decision.pk]))
    if invoice is not None:
        pages.append(reverse("billing:invoice_print", args=[invoice.pk]))
    for model in admin.site._registry:
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    return pages


def test_every_operator_page_answers_with_a_campus_in_maintenance_and_one_down(operator_page):
    now = timezone.now()
    seed_inventory(scale=0.01)
    seed_leasing(scale=0.01, now=now)
    seed_billing(now=now)
    seed_reclaim(now=now)
    seed_demo_maintenance(now=now)
    fleet.window_create(
        title="Campus 1 power shutdown",
        scope="site",
        site=Site.objects.get(slug="campus-1"),
        category="power",
        kind="emergency",
        starts_at=now - dt.timedelta(minutes=5),
        ends_at=now + dt.timedelta(days=1),
        now=now,
    )
    for node in Node.objects.filter(cluster__site__slug="campus-3"):
        fleet.incident_open(node=node, category="power", source="operator", now=now)
    assert set(
        Node.objects.filter(cluster__site__slug="campus-1").values_list("status", flat=True)
    ) == {NodeStatus.MAINTENANCE}
    assert set(
        Node.objects.filter(cluster__site__slug="campus-3").values_list("status", flat=True)
    ) == {NodeStatus.DOWN}
    page = operator_page
    visited = []
    for path in _pages():
        response = page.goto(f"{page.base_url}{path}")
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        text = page.content()
        for error in ERROR_TEXT:
            assert error not in text, (path, error)
        visited.append(path)
    page.goto(f"{page.base_url}{reverse('operator:dashboard')}")
    assert page.locator("text=GPUs in the fleet").is_visible()
    page.shot("dashboard-campus-down")
    page.goto(f"{page.base_url}{reverse('operator:fleet-maintenance')}")
    calendar = page.locator("[data-testid=maintenance-calendar]").inner_text()
    assert "Campus 1 power shutdown" in calendar
    assert "Campus 1 (Elk Grove) (whole campus)" in calendar
    page.shot("maintenance-calendar")
    assert len(visited) > 30
