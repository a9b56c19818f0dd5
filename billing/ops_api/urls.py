"""Routes of the operator payments API under `/api/ops/v1/`."""

from django.urls import path

from . import views

payments = views.PaymentViewSet

urlpatterns = [
    path(
        "payments/",
        payments.as_view({"get": "list", "post": "create"}),
        name="ops-payment-list",
    ),
    path("payments/<int:pk>/", payments.as_view({"get": "retrieve"}), name="ops-payment-detail"),
    path(
        "payments/<int:pk>/reverse/",
        payments.as_view({"post": "reverse"}),
        name="ops-payment-reverse",
    ),
    path(
        "refunds/",
        views.RefundViewSet.as_view({"get": "list", "post": "create"}),
        name="ops-refunds",
    ),
]
