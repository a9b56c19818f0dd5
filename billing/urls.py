"""Operator pages for billing (staff only); included by the project under /operator/billing/."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("invoices/<int:pk>/print/", views.invoice_print, name="invoice_print"),
    path("revenue/", views.revenue, name="revenue"),
]
