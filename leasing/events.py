"""Lease events as domain events: what leasing tells the apps above it.

Every leasing service writes a `LeaseEvent` (the audit row) and calls `publish(event)` in the
same transaction; `publish` emits a domain event of the same kind (`common.events`) with what
consumers need, so each consumer registered for that kind — billing (credit notes), reclaim
(executed decisions), webhooks (tenant notifications) — runs once after the change committed,
and never for a change that was rolled back.

Payload of a lease event (`subject="lease"`, `subject_id` = the lease id, `occurred_at` = the
`LeaseEvent.at`, i.e. the service's `now`)::

    {"lease_event": id, "tenant": id,
     "lease": {"id", "number", "status"},   # as of the event
     "from_status", "to_status", "at", "detail": LeaseEvent.data}

Consume with, in the consuming app's `AppConfig.ready`::

    events.register(EventKind.NOTICE_RECEIVED, "billing.credit_notes", consumer_fn)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common import events

if TYPE_CHECKING:
    from .models import LeaseEvent


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
    PO_NUMBER_SET = "lease.po_number_set"


def payload(event: LeaseEvent) -> dict[str, Any]:
    """What consumers of a lease event get (see the module docstring)."""
    lease = event.lease
    return {
        "lease_event": event.pk,
        "tenant": lease.tenant_id,
        "lease": {"id": lease.pk, "number": lease.number, "status": lease.status},
        "from_status": event.from_status,
        "to_status": event.to_status,
        "at": event.at.isoformat(),
        "detail": event.data,
    }


def publish(event: LeaseEvent) -> None:
    """Emit `event` as a domain event, in the caller's transaction (consumed after commit)."""
    events.emit(
        event.kind,
        subject="lease",
        subject_id=event.lease_id,
        payload=payload(event),
        occurred_at=event.at,
    )
