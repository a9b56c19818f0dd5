"""Routes of the webhook endpoint API under `/api/v1/`."""

from django.urls import path

from . import views

hooks = views.WebhookEndpointViewSet

urlpatterns = [
    path(
        "webhook-endpoints/",
        hooks.as_view({"get": "list", "post": "create"}),
        name="webhook-endpoint-list",
    ),
    path(
        "webhook-endpoints/<int:pk>/",
        hooks.as_view({"get": "retrieve", "delete": "destroy"}),
        name="webhook-endpoint-detail",
    ),
]
