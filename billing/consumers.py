"""Billing's consumers of domain events (`common.events`), registered in `BillingConfig.ready`.

**Corrections after a lease change.** A notice, a confirmed withdrawal, a cancellation, an end
or a release may leave issued invoices billing more than the lease now accrues (rent past a new
end, holdover past a backdated release). The consumer computes the lease's credit notes right
after the change commits (`services.credit_notes_for_changes`), instead of at the next daily
run, which still recomputes them as a catch-up.

It acts **as of the event's `occurred_at`** (the producing service's `now`), not the wall
clock, and it issues corrections only: the regular invoices stay with the runs and their
schedule. That is why history written with a simulated clock (`seed_demo` replays months of
leases, notices and daily runs in the past) is not billed again at today's date: a back-dated
event is handled at its own instant, and it can only credit what was already invoiced by then.
Idempotent (billed − already credited − due), so a duplicated event credits nothing twice.
"""

from __future__ import annotations

from common.models import DomainEvent
from leasing.events import EventKind
from leasing.models import Lease

from . import services

CREDIT_NOTE_KINDS = (
    EventKind.NOTICE_RECEIVED,
    EventKind.NOTICE_WITHDRAWN,
    EventKind.NOTICE_EFFECTIVE,
    EventKind.LINE_ENDED,
    EventKind.LINE_CANCELLED,
    EventKind.LEASE_CANCELLED,
    EventKind.LEASE_TERMINATED,
    EventKind.LEASE_EXPIRED,
    EventKind.LEASE_RELEASED,
)


def credit_lease_changes(event: DomainEvent) -> None:
    """Issue the credit notes the lease's change calls for, dated `event.occurred_at`."""
    services.credit_notes_for_changes(lease=Lease(pk=event.subject_id), now=event.occurred_at)


def bill_on_activation(event: DomainEvent) -> None:
    """Invoice the first, partial month the moment a lease activates (docs/rules/billing.md),
    not at the next daily run: the lease is billed as of the activation instant by the same
    idempotent service the daily run uses, so the run then finds the month taken and a
    replayed event finds nothing to do."""
    services.lease_bill(lease_id=event.subject_id, now=event.occurred_at)
