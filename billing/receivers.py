"""Billing's side of lease events: a lease is billed the moment it activates.

Connected to `leasing.events.lease_event` (sent after the lease transition commits) by the
billing app config. On `lease.activated` the lease's first, partial month is invoiced at once
(docs/rules/billing.md), not at the next daily run: the `billing.bill_lease` task bills the lease
as of the activation instant. It is the same idempotent service the daily run uses, so the run
finds the month taken and a redelivered task finds nothing to do; a lost signal is caught up
by the next daily run.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from leasing.events import EventKind, lease_event


@receiver(lease_event, dispatch_uid="billing.bill_on_activation")
def bill_on_activation(sender: Any, event: Any, **kwargs: Any) -> None:
    if event.kind != EventKind.LEASE_ACTIVATED:
        return
    from .tasks import bill_lease

    bill_lease.delay(event.lease_id, now=event.at.isoformat())
