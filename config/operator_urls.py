"""Operator pages (staff only), under /operator/."""

from django.urls import path

from . import dashboard

app_name = "operator"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
]
