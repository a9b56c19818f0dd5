"""Shared steps of every leasing write: the audit event, the status move, the lease lock.

Used by `leasing.services` (listings and the lease lifecycle), `leasing.allocation`,
`leasing.notices` and `leasing.boundaries`; it imports none of them, so they can all import it.
Every lease write locks the lease first (`_lock_lease`) and re-reads it — the lock order of
docs/architecture.md — and records what it did as a `LeaseEvent` (docs/rules/lease.md, "States").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from common.db import lock_row

from .choices import LeaseStatus, Party
from .events import EventKind, publish
from .exceptions import InvalidInput, TransitionNotAllowed
from .models import Lease, LeaseEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _party(party: str, allowed: Iterable[str] = (Party.OPERATOR, Party.TENANT)) -> Party:
    if party not in set(allowed):
        raise InvalidInput(f"party must be one of {sorted(allowed)}", extra={"party": party})
    return Party(party)


def _event(
    lease: Lease,
    kind: str,
    *,
    party: str,
    actor: User | None,
    at: dt.datetime,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> LeaseEvent:
    """Write the audit row and emit it as a domain event, consumed after commit
    (`leasing.events`)."""
    event = LeaseEvent.objects.create(
        lease=lease,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_party=party,
        actor=actor,
        at=at,
        reason=reason[:500],
        data=data or {},
    )
    publish(event)
    return event


def _move(
    lease: Lease,
    to: str,
    kind: str,
    *,
    party: str,
    actor: User | None,
    now: dt.datetime,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> LeaseEvent:
    """Move the (locked) lease to status `to`, save it, and record the move as `kind`."""
    before = lease.status
    lease.status = to
    lease.save(update_fields=["status", "updated_at"])
    return _event(
        lease,
        kind,
        party=party,
        actor=actor,
        at=now,
        from_status=before,
        to_status=to,
        reason=reason,
        data=data,
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _lock_lease(lease: Lease | int) -> Lease:
    """Lock the lease row and return a fresh copy (state re-read after the lock)."""
    try:
        return lock_row(Lease, lease.pk if isinstance(lease, Lease) else lease)
    except Lease.DoesNotExist:
        raise TransitionNotAllowed("The lease no longer exists.") from None


def _activate(lease: Lease, *, party: str, actor: User | None, now: dt.datetime) -> None:
    _move(
        lease,
        LeaseStatus.NOTICE_GIVEN if lease.effective_end is not None else LeaseStatus.ACTIVE,
        EventKind.LEASE_ACTIVATED,
        party=party,
        actor=actor,
        now=now,
        data={"commencement": _iso(lease.commencement)},
    )
