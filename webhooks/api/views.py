"""Webhook endpoints of the tenant API: list, register (the secret is shown once), disable."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from leasing.api.schema import errors
from leasing.api.views import TenantAPIMixin

from .. import services as webhooks
from ..models import WebhookEndpoint
from .serializers import (
    WebhookEndpointCreatedSerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointSerializer,
)


@extend_schema_view(
    list=extend_schema(
        summary="Your webhook endpoints",
        responses={200: WebhookEndpointSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One webhook endpoint", responses={200: WebhookEndpointSerializer, **errors(404)}
    ),
    create=extend_schema(
        summary="Register a webhook endpoint",
        description="Events are POSTed as JSON, signed per Standard Webhooks: headers "
        "`webhook-id` (the event id: dedupe on it), `webhook-timestamp`, `webhook-signature` "
        "(`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the secret returned here, once). "
        "Failed deliveries are retried with exponential backoff. At most "
        f"{webhooks.MAX_ACTIVE_ENDPOINTS} active endpoints per tenant "
        "(409 `webhook_endpoint_limit`).",
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointCreatedSerializer, **errors(400, 409, 413, 415)},
    ),
    destroy=extend_schema(
        summary="Stop sending to an endpoint", responses={204: None, **errors(404)}
    ),
)
class WebhookEndpointViewSet(
    TenantAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = WebhookEndpointSerializer
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return WebhookEndpoint.objects.filter(tenant=self.tenant, is_active=True)

    def create(self, request, *args, **kwargs):
        serializer = WebhookEndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_create(tenant=self.tenant, **serializer.validated_data)
        return Response(
            WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    def destroy(self, request, *args, **kwargs):
        webhooks.webhook_endpoint_disable(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
