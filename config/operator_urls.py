"""Operator pages under /operator/; each view names the permissions it needs (common.access)."""

from django.urls import include, path

from . import capacity, dashboard, risk, search
from .fleet import availability, handover, incidents, maintenance, nodes

app_name = "operator"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("search/", search.search, name="search"),
    path("revenue-at-risk/", risk.revenue_at_risk, name="revenue-at-risk"),
    path("reclaim/", include("reclaim.urls")),
    path("capacity/", capacity.capacity_index, name="capacity"),
    path("capacity/<slug:slug>/", capacity.capacity_cluster, name="capacity-cluster"),
    path("fleet/handover/", handover.handover, name="fleet-handover"),
    path("fleet/incidents/", incidents.incident_queue, name="fleet-incidents"),
    path("fleet/nodes/", nodes.node_search, name="fleet-node-search"),
    path("fleet/nodes/<str:hostname>/", nodes.node_page, name="fleet-node"),
    path("fleet/maintenance/", maintenance.maintenance_calendar, name="fleet-maintenance"),
    path("availability/", availability.availability_index, name="availability"),
    path(
        "availability/<int:pk>/",
        availability.availability_report,
        name="availability-report",
    ),
]
