"""Celery tasks of the tenant API: webhook delivery and its minute sweep, idempotency cleanup.

Thin: ids in, one service call. Delivery is at least once; `webhooks.delivery_attempt` claims
each attempt with a compare-and-set, so a redelivered or duplicated task sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import webhooks
from .api import idempotency

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)


def _instant(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    instant = parse_datetime(value)
    if instant is None or timezone.is_naive(instant):
        raise ValueError(f"expected an aware ISO 8601 instant, got {value!r}")
    return instant


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
    return webhooks.delivery_attempt(delivery_id=delivery_id, now=_instant(now))


@shared_task(
    name="leasing.deliver_due_webhooks",
    ignore_result=True,
    expires=60,
    soft_time_limit=50,
    time_limit=58,
)
def deliver_due_webhooks(now: str | None = None) -> dict[str, int]:
    """Every minute: announce newly issued billing documents, then dispatch every delivery
    whose next attempt is due (first attempts missed by a lost message, and retries)."""
    instant = _instant(now)
    queued = webhooks.enqueue_billing_events(now=instant)
    due = webhooks.due_delivery_ids(now=instant)
    for pk in due:
        deliver_webhook.apply_async(args=(pk,), kwargs={"now": now}, expires=300)
    return {"queued": len(queued), "dispatched": len(due)}


@shared_task(name="leasing.purge_idempotency_records", ignore_result=True, time_limit=300)
def purge_idempotency_records(now: str | None = None) -> int:
    """Delete idempotency records past their retention (24 h)."""
    return idempotency.purge_expired(now=_instant(now))
