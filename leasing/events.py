"""The hook for side effects of lease transitions (webhooks, notifications).

Every service writes a `LeaseEvent` row in its transaction and calls `publish(event)`; the
`lease_event` signal is sent only after that transaction commits (`transaction.on_commit`), so a
receiver never sees an event that was rolled back, and a slow or failing receiver cannot undo a
transition. Receivers get `sender=LeaseEvent, event=<LeaseEvent>`; `event.kind` is a dotted name
(`lease.activated`, `notice.received`, ...: see `EventKind`). Delivery is at most once per commit:
a receiver that must not lose events (webhooks) should enqueue a task keyed by `event.pk` and let
the task retry.

Subscribe with::

    from django.dispatch import receiver
    from leasing.events import lease_event

    @receiver(lease_event)
    def on_lease_event(sender, event, **kwargs): ...
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction
from django.dispatch import Signal

if TYPE_CHECKING:
    from .models import LeaseEvent

logger = logging.getLogger(__name__)

lease_event = Signal()


class EventKind:
    """The `LeaseEvent.kind` values the services write."""

    LEASE_REQUESTED = "lease.requested"
    LEASE_CREATED = "lease.created"
    LEASE_APPROVED = "lease.approved"
    LEASE_REJECTED = "lease.rejected"
    LEASE_ACTIVATED = "lease.activated"
    LEASE_RENEWED = "lease.renewed"
    LEASE_TERMINATED = "lease.terminated"
    LEASE_EXPIRED = "lease.expired"
    LEASE_CANCELLED = "lease.cancelled"
    LEASE_HOLDOVER = "lease.holdover"
    LEASE_RELEASED = "lease.released"
    LINE_ENDED = "line.ended"
    LINE_CANCELLED = "line.cancelled"
    NOTICE_RECEIVED = "notice.received"
    NOTICE_WITHDRAWAL_REQUESTED = "notice.withdrawal_requested"
    NOTICE_WITHDRAWN = "notice.withdrawn"
    NOTICE_EFFECTIVE = "notice.effective"


def publish(event: LeaseEvent) -> None:
    """Send `lease_event` for `event` once the current transaction commits."""

    def send() -> None:
        for receiver, result in lease_event.send_robust(sender=type(event), event=event):
            if isinstance(result, Exception):
                logger.error(
                    "lease_event receiver %r failed for event %s (%s)",
                    receiver,
                    event.pk,
                    event.kind,
                    exc_info=result,
                )

    transaction.on_commit(send)
