"""Operator pages under /operator/; each view names the permissions it needs (common.access)."""

from django.urls import include, path

from . import capacity, dashboard
from .fleet import availability

app_name = "operator"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("reclaim/", include("reclaim.urls")),
    path("capacity/", capacity.capacity_index, name="capacity"),
    path("capacity/<slug:slug>/", capacity.capacity_cluster, name="capacity-cluster"),
    path("availability/", availability.availability_index, name="availability"),
    path(
        "availability/<int:pk>/",
        availability.availability_report,
        name="availability-report",
    ),
]
