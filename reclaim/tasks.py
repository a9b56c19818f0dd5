"""Celery task of reclaim decisions: the nightly re-score (thin: one service call)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    name="leasing.rescore_reclaim_decisions",
    ignore_result=True,
    # Nightly; a run not started within 6 hours is dropped, the next night catches up.
    expires=6 * 3600,
    soft_time_limit=1800,
    time_limit=1900,
)
def rescore_reclaim_decisions() -> dict[str, int]:
    """Re-score every open decision with fresh inventory and prices; flag flips; mark executed.

    Safe to run twice: each decision is re-scored under its row lock with its state re-read.
    """
    counts = services.decisions_rescore()
    logger.info("reclaim decisions re-scored: %s", counts)
    return counts
