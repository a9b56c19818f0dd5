"""Celery tasks of domain events (`common.events`): consume deliveries, sweep the stragglers.

Thin: ids in, one service call each. Delivery of the task is at least once; `events.deliver`
consumes each delivery exactly once whatever the number of times it is dispatched. Retries here
cover transient database errors only (a consumer's own failure is recorded on its delivery and
retried by the sweep with backoff).
"""

from __future__ import annotations

from collections import Counter

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import events
from .clock import parse_instant
from .db import drop_broken_connections

TRANSIENT = (OperationalError, InterfaceError)


@shared_task(
    name="common.deliver_events",
    ignore_result=True,
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=300,
    time_limit=360,
)
def deliver_events(delivery_ids: list[int], now: str | None = None) -> dict[str, int]:
    """Consume each delivery in turn, each in its own transaction; counts by outcome."""
    instant = parse_instant(now)
    outcomes: Counter[str] = Counter()
    try:
        for delivery_id in delivery_ids:
            outcomes[events.deliver(delivery_id, now=instant) or "skipped"] += 1
    except TRANSIENT:
        drop_broken_connections()
        raise
    return dict(outcomes)


@shared_task(
    name="common.sweep_events",
    ignore_result=True,
    # Every minute; a sweep not started within the minute is pointless, the next one comes.
    expires=60,
    soft_time_limit=50,
    time_limit=58,
)
def sweep_events(now: str | None = None) -> int:
    """Dispatch pending deliveries that are due (retries, lost dispatches)."""
    return len(events.sweep(now=parse_instant(now)))
