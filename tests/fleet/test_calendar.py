"""The maintenance calendar (config/fleet/maintenance.py)."""

import datetime as dt

import pytest
from django.urls import reverse

from clusters import fleet
from leasing import maintenance

from .test_deferrals import DAY, HOUR, NOW, window

pytestmark = pytest.mark.django_db


def test_the_calendar_shows_windows_by_week_with_tenants_and_open_requests(
    fleet_world, admin_client, monkeypatch
):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    w = fleet_world
    planned = window(scope="cluster", cluster=w["cluster"], title="Driver roll-out")
    late = window(
        scope="nodes",
        nodes=w["nodes_b"],
        title="Swap PSUs",
        kind="planned",
        starts_at=NOW + 2 * DAY,
        ends_at=NOW + 2 * DAY + HOUR,
    )
    running = window(
        scope="nodes",
        nodes=w["free"],
        title="Coolant leak",
        kind="emergency",
        starts_at=NOW - HOUR,
        ends_at=NOW + HOUR,
    )
    done = window(
        scope="cluster",
        cluster=w["cluster"],
        title="Old work",
        starts_at=NOW - 2 * DAY,
        ends_at=NOW - DAY,
        announced_at=NOW - 3 * DAY,
    )
    maintenance.deferral_request(
        window=planned, tenant=w["a"], requested_start=planned.starts_at + DAY, now=NOW
    )
    page = admin_client.get(reverse("operator:fleet-maintenance")).content.decode()
    assert page.index("Coolant leak") < page.index("Swap PSUs") < page.index("Driver roll-out")
    assert "Old work" not in page
    assert "late (announced 2 d 0 h ahead)" in page
    assert "emergency" in page
    assert "Lab A, Lab B" in page  # the cluster window touches both tenants
    assert "Lab A: to" in page  # its open deferral request, linked
    assert reverse("admin:leasing_maintenancedeferral_changelist") in page
    assert f"Cluster {w['cluster'].name}" in page
    assert "UTC" in page
    assert fleet.counts_as_planned(planned)
    assert not fleet.counts_as_planned(late)
    assert running.status == "in_progress"
    assert done.status == "done"
    week = planned.starts_at.isocalendar()[1]
    assert f"Week {week} of {planned.starts_at.year}" in page
    assert dt.timedelta(0) < planned.starts_at - NOW
