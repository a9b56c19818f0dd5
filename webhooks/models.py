"""Tenant webhooks: where each tenant receives signed events, and the delivery log.

Rules live in `webhooks/services.py`.
"""

from __future__ import annotations

from django.db import models

from leasing.models import Tenant

from .choices import WebhookDeliveryStatus


class WebhookEndpoint(models.Model):
    """Where a tenant receives signed events (Standard Webhooks: id, timestamp, HMAC-SHA256).
    `event_types` empty means every event type."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, help_text="Signing secret (whsec_…).")
    event_types = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event to one endpoint, retried with backoff until it succeeds or gives up.
    (endpoint, event_id) is unique, so an event is queued once per endpoint however often the
    producer runs; receivers dedupe on the event id (`webhook-id`)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16,
        choices=WebhookDeliveryStatus.choices,
        default=WebhookDeliveryStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_delivery_once_per_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint} ({self.get_status_display().lower()})"
