"""Routes of the tenant API under `/api/v1/` (billing side)."""

from django.urls import path

from . import availability, cancellation, views

invoices = views.InvoiceViewSet
credit_notes = views.CreditNoteViewSet
payments = views.PaymentViewSet

urlpatterns = [
    path(
        "leases/<int:pk>/termination-quote/",
        views.TerminationQuoteView.as_view(),
        name="lease-termination-quote",
    ),
    path(
        "leases/<int:pk>/availability/",
        availability.LeaseAvailabilityView.as_view(),
        name="lease-availability",
    ),
    path(
        "leases/<int:pk>/lines/<int:line_id>/cancel-late-delivery/",
        cancellation.CancelLateDeliveryView.as_view(),
        name="lease-line-cancel-late-delivery",
    ),
    path("invoices/", invoices.as_view({"get": "list"}), name="invoice-list"),
    path("invoices/<int:pk>/", invoices.as_view({"get": "retrieve"}), name="invoice-detail"),
    path("credit-notes/", credit_notes.as_view({"get": "list"}), name="credit-note-list"),
    path(
        "credit-notes/<int:pk>/",
        credit_notes.as_view({"get": "retrieve"}),
        name="credit-note-detail",
    ),
    path("payments/", payments.as_view({"get": "list"}), name="payment-list"),
    path("payments/<int:pk>/", payments.as_view({"get": "retrieve"}), name="payment-detail"),
    path("statement/", views.StatementView.as_view(), name="statement"),
]
