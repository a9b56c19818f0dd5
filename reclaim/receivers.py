"""Move reclaim decisions to EXECUTED when the reclaimed nodes come back.

Connected to `leasing.events.lease_event` (sent after the lease transition commits). The
nightly re-score job runs the same check, so a missed signal is caught up within a day.
Import this module once at start-up (the leasing app config does) to connect the receiver.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from leasing.events import EventKind, lease_event

from .choices import ReclaimStatus
from .models import ReclaimDecision

BACK_EVENTS = {
    EventKind.LEASE_RELEASED,
    EventKind.LINE_ENDED,
    EventKind.LINE_CANCELLED,
    EventKind.LEASE_CANCELLED,
}


@receiver(lease_event, dispatch_uid="reclaim.executed")
def on_lease_event(sender: Any, event: Any, **kwargs: Any) -> None:
    if event.kind not in BACK_EVENTS:
        return
    from .services import decisions_mark_executed

    ids = list(
        ReclaimDecision.objects.filter(
            status=ReclaimStatus.NOTICE_ISSUED, lines__lease_id=event.lease_id
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    if ids:
        decisions_mark_executed(decision_ids=ids, now=event.at)
