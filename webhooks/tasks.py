"""Celery tasks of tenant webhooks: one delivery attempt, and the minute retry sweep.
(Deliveries are queued by the webhook consumer of domain events, `webhooks.services.announce`.)

Thin: ids in, one service call. Delivery is at least once; `webhooks.delivery_attempt` claims
each attempt with a compare-and-set, so a redelivered or duplicated task sends nothing twice.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from common.clock import parse_instant

from . import services as webhooks

logger = logging.getLogger(__name__)

# Task names are what beat schedules and queued messages carry: kept from when webhooks lived in
# leasing, so a deploy never strands a queued delivery under an unknown name.

TRANSIENT = (OperationalError, InterfaceError)


@shared_task(
    name="leasing.deliver_webhook",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
    # A bounded HTTP attempt (connect 3 s + read 10 s) fits well inside.
    soft_time_limit=45,
    time_limit=60,
)
def deliver_webhook(delivery_id: int, now: str | None = None) -> str | None:
    """Attempt one delivery now (if it is still due and nobody else holds it)."""
    return webhooks.delivery_attempt(delivery_id=delivery_id, now=parse_instant(now))


@shared_task(
    name="leasing.deliver_due_webhooks",
    ignore_result=True,
    expires=60,
    soft_time_limit=50,
    time_limit=58,
)
def deliver_due_webhooks(now: str | None = None) -> dict[str, int]:
    """Every minute: dispatch every delivery whose next attempt is due (first attempts whose
    dispatch was lost or not made, and retries after their backoff)."""
    due = webhooks.due_delivery_ids(now=parse_instant(now))
    for pk in due:
        deliver_webhook.apply_async(args=(pk,), kwargs={"now": now}, expires=300)
    return {"dispatched": len(due)}
