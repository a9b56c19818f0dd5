"""Reclaim's consumer of domain events (`common.events`), registered in the app config.

When a lease's nodes come back (`lease.released`, a line ended or cancelled, the lease
cancelled), the decisions that reclaimed them move to EXECUTED, as of the event's instant. The
nightly re-score runs the same check, so a delivery an operator has not retried yet is caught
up within a day.
"""

from __future__ import annotations

from common.models import DomainEvent
from leasing.events import EventKind

from .choices import ReclaimStatus
from .models import ReclaimDecision
from .services import decisions_mark_executed

BACK_EVENTS = (
    EventKind.LEASE_RELEASED,
    EventKind.LINE_ENDED,
    EventKind.LINE_CANCELLED,
    EventKind.LEASE_CANCELLED,
)


def mark_executed(event: DomainEvent) -> None:
    """Move the lease's NOTICE_ISSUED decisions whose reclaimed lines are all back."""
    ids = list(
        ReclaimDecision.objects.filter(
            status=ReclaimStatus.NOTICE_ISSUED, lines__lease_id=event.subject_id
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    if ids:
        decisions_mark_executed(decision_ids=ids, now=event.occurred_at)
