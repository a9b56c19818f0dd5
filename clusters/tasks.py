"""Celery tasks of the inventory: thin wrappers around one service call each."""

from __future__ import annotations

import logging

from celery import shared_task

from common.clock import parse_instant, resolve_now

from . import fleet

logger = logging.getLogger(__name__)


@shared_task(
    name="clusters.advance_maintenance_windows",
    ignore_result=True,
    # Beat fires every 5 minutes; a run not started within that window is pointless, the next
    # one catches up on every window the clock has overtaken.
    expires=300,
    soft_time_limit=240,
    time_limit=290,
)
def advance_maintenance_windows(now: str | None = None) -> dict[str, int]:
    """Move maintenance windows with the clock (scheduled → in_progress → done) and refresh
    their nodes' status. Safe to run twice or concurrently: each window moves under its row
    lock with its status re-read (`fleet.windows_advance`)."""
    moved = fleet.windows_advance(now=resolve_now(parse_instant(now)))
    if moved:
        logger.info("maintenance windows moved: %s", moved)
    return moved
