"""Operator admin for tenant webhooks: the endpoints (disable) and the delivery log (read-only,
with a retry action). Every write goes through `webhooks.services`."""

from __future__ import annotations

from django.contrib import admin, messages

from common.admin import record_change

from . import services as webhooks
from .models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "tenant", "is_active", "event_types", "created_at", "disabled_at"]
    list_filter = ["is_active", "tenant"]
    search_fields = ["url", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "tenant",
        "url",
        "description",
        "event_types",
        "is_active",
        "created_at",
        "disabled_at",
    ]
    exclude = ["secret"]
    actions = ["disable"]

    def has_add_permission(self, request):
        return False  # tenants register endpoints through the API

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable(self, request, queryset):
        endpoints = list(queryset.filter(is_active=True))
        for endpoint in endpoints:
            webhooks.webhook_endpoint_disable(endpoint=endpoint)
        record_change(request.user, endpoints, "Disabled")
        self.message_user(request, "Disabled.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: what was sent where, how often, and what the receiver answered."""

    list_display = [
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "endpoint__url", "endpoint__tenant__name"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    actions = ["retry"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description="Retry the selected deliveries at the next sweep", permissions=["change"]
    )
    def retry(self, request, queryset):
        for delivery in queryset:
            webhooks.webhook_delivery_retry(delivery=delivery)
        record_change(request.user, queryset, "Queued for retry")
        self.message_user(request, "Queued for the next sweep.", messages.SUCCESS)
