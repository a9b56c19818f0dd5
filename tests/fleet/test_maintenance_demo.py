"""The demo's maintenance windows (leasing/maintenance.py `seed_demo_maintenance`)."""

import datetime as dt

import pytest

from clusters import fleet
from clusters.choices import MaintenanceStatus, NodeStatus
from clusters.demo import seed_inventory
from clusters.models import MaintenanceWindow
from leasing.demo import seed_leasing
from leasing.maintenance import DEMO_EMERGENCY, DEMO_PLANNED, seed_demo_maintenance
from leasing.models import MaintenanceDeferral

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)


def test_the_demo_has_a_planned_and_an_emergency_window_and_a_deferral_request():
    seed_inventory(scale=0.01)
    seed_leasing(scale=0.01, now=NOW)
    created = seed_demo_maintenance(now=NOW)
    assert created == {"maintenance windows": 2, "deferral requests": 1}
    planned = MaintenanceWindow.objects.get(title=DEMO_PLANNED)
    emergency = MaintenanceWindow.objects.get(title=DEMO_EMERGENCY)
    assert fleet.counts_as_planned(planned)
    assert planned.status == MaintenanceStatus.SCHEDULED
    assert emergency.status == MaintenanceStatus.IN_PROGRESS
    assert not fleet.counts_as_planned(emergency)
    assert set(fleet.window_nodes(emergency).values_list("status", flat=True)) == {
        NodeStatus.MAINTENANCE
    }
    deferral = MaintenanceDeferral.objects.get()
    assert (deferral.window, deferral.tenant.slug) == (planned, "northwind-ai")
    assert seed_demo_maintenance(now=NOW) == {"maintenance windows": 0, "deferral requests": 0}
