"""Operator pages for billing (each names its permissions), mounted under /operator/billing/."""

from django.urls import path

from . import views, views_receivables

app_name = "billing"

urlpatterns = [
    path("invoices/<int:pk>/print/", views.invoice_print, name="invoice_print"),
    path("revenue/", views.revenue, name="revenue"),
    path("receivables/", views_receivables.receivables, name="receivables"),
    path("journal.csv", views_receivables.journal_csv, name="journal_csv"),
    path("backlog/", views_receivables.backlog_page, name="backlog"),
]
