"""Routes of the operator ingestion API under `/api/ops/v1/`."""

from django.urls import path

from . import views

urlpatterns = [
    path("health-events/", views.HealthEventsView.as_view(), name="ops-health-events"),
]
