"""Domain events: what a lower app tells the apps above it (see `common.events`).

A `DomainEvent` is written by the service that made the change, in the same transaction, with
one `EventDelivery` per consumer that wants it. Deliveries are the unit of work, of retry and of
what operators see: each is consumed once (its "done" commits with the consumer's own writes)
or ends FAILED with its error.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class DomainEvent(models.Model):
    """Something that happened to one subject, e.g. `notice.received` on lease 42.

    `occurred_at` is the instant of the change on the clock of the service that made it (its
    `now`): consumers act as of that instant, so history written with a simulated clock (the
    demo) is handled as of its own time. `created_at` is when the row was written (wall clock).
    Never updated after it is written.
    """

    kind = models.CharField(max_length=64, help_text="Dotted name, e.g. notice.received.")
    subject = models.CharField(max_length=32, help_text="What changed: lease, invoice, ...")
    subject_id = models.BigIntegerField()
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["subject", "subject_id"], name="domainevent_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.subject} {self.subject_id})"


class EventDeliveryStatus(models.TextChoices):
    """PENDING until the consumer committed (DONE) or gave up (FAILED)."""

    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (needs an operator)"


class EventDelivery(models.Model):
    """One event to one consumer; unique per (event, consumer), so it is consumed at most once.

    `next_attempt_at` is when the sweep may dispatch it (again): a few minutes after it was
    written for a fresh delivery (its after-commit dispatch normally runs long before), the
    backoff after a failure; empty once DONE or FAILED. `attempts` counts consumer runs that
    ended, successful or not. An operator's retry is recorded (`retried_by`, `retried_at`).
    """

    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="deliveries")
    consumer = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=EventDeliveryStatus.choices, default=EventDeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    retried_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "event deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "consumer"], name="eventdelivery_once"),
        ]
        indexes = [
            # The sweep: pending deliveries due for (re-)dispatch. Partial, so it stays as small
            # as the backlog however many deliveries are done.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="eventdelivery_due",
            ),
            # The operators' list: failed and waiting deliveries, by consumer. Done ones (nearly
            # all of them) are left out of the index.
            models.Index(
                fields=["status", "consumer"],
                condition=~Q(status="done"),
                name="eventdelivery_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} ← event {self.event_id} ({self.status})"


class StoredKey(models.Model):
    """What every bearer key stores (`common/keys.py`: shown once, kept as a SHA-256 hash with
    its lookup prefix in clear; a revoked or expired key authenticates nothing). Each kind adds
    its owner: a tenant (`leasing.ApiKey`) or a staff user (`OperatorKey`)."""

    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class OperatorKey(StoredKey):
    """An operator API key (`/api/ops/v1/`), owned by a staff user: a request made with it acts
    as that user, with that user's Django permissions, and every write records the user. A key
    whose user is no longer active staff authenticates nothing (`common/operator_keys.py`).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_keys"
    )

    def __str__(self) -> str:
        return f"{self.user} operator key {self.prefix}…"
