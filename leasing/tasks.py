"""Celery tasks of leasing: thin wrappers around one service call each."""

from __future__ import annotations

import logging

from celery import shared_task

from common.clock import parse_instant

from . import boundaries
from .api import idempotency

logger = logging.getLogger(__name__)


@shared_task(
    name="leasing.process_boundaries",
    ignore_result=True,
    # Beat fires every 5 minutes; a run that has not started within that window is pointless,
    # the next one catches up on everything anyway.
    expires=300,
    soft_time_limit=240,
    time_limit=290,
)
def process_boundaries() -> dict[str, int]:
    """Apply every lease boundary due now (activate, end, expire, holdover; catch-up included).

    Safe to run twice or concurrently: each lease is settled under its row lock with state
    re-read (see `boundaries.process_boundaries`).
    """
    counts = boundaries.process_boundaries()
    if counts:
        logger.info("lease boundaries applied: %s", counts)
    return counts


@shared_task(name="leasing.purge_idempotency_records", ignore_result=True, time_limit=300)
def purge_idempotency_records(now: str | None = None) -> int:
    """Delete idempotency records past their retention (24 h)."""
    return idempotency.purge_expired(now=parse_instant(now))
