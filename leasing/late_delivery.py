"""The tenant's right to cancel a line delivered late (docs/rules/fleet.md, "Rent follows
accepted nodes", late-delivery cancellation).

If fewer than 95 % of a line's nodes are accepted 30 days after commencement, the tenant may
cancel that line: it becomes CANCELLED with no charge (its billable life is empty: its effective
end is the commencement), its allocations stop at the instant of the cancellation so the nodes
are free again, and the change is recorded (`line.cancelled`, with the actor and the figures
that made it eligible). Billing credits everything invoiced for it in the same transaction
(`billing.cancellation`); this module knows the rule, not the money.

* **Day 30** is the commencement plus 30 calendar days of the contract zone, at the same local
  time (`cancellation_opens_at`): in America/Chicago a lease commencing at local midnight on
  2026-10-15 may cancel from 2026-11-14T00:00 CST, 30 days and one hour later. The right opens
  at that instant (included) and does not lapse while the line stays under 95 %.
* **Accepted** is measured at the instant of the request: the line's hand-over allocations
  (a spare swapped in by a replacement is not one: its slot was accepted once) whose node is
  accepted then (`Allocation.accepted_at` set and not later). 94 of 100 may cancel; 95 may not.

Refusals (409, nothing written): `line_cancellation_not_yet` (before day 30),
`line_delivered` (95 % or more accepted), `line_already_cancelled`, `line_not_open` (ended, or
the lease not running).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet

from common.contract_time import zone

from .choices import LeaseStatus, LineStatus
from .events import EventKind
from .exceptions import Conflict, NotFound
from .models import Allocation, Lease, LeaseLine
from .transitions import _event, _iso, _lock_lease, _party

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The rule (docs/rules/fleet.md): under 95 % accepted, 30 days after commencement.
CANCELLATION_AFTER_DAYS = 30
ACCEPTED_PERCENT_REQUIRED = 95

# A lease whose lines run: signed and commenced, not ended.
RUNNING = (LeaseStatus.ACTIVE, LeaseStatus.NOTICE_GIVEN)


class LineCancellationNotYet(Conflict):
    code = "line_cancellation_not_yet"
    default_message = "The line may be cancelled for late delivery only 30 days after commencement."


class LineDelivered(Conflict):
    code = "line_delivered"
    default_message = "95 % or more of the line's nodes are accepted: it cannot be cancelled."


class LineAlreadyCancelled(Conflict):
    code = "line_already_cancelled"
    default_message = "The line is already cancelled."


class LineNotOpen(Conflict):
    code = "line_not_open"
    default_message = "The line is not running: it cannot be cancelled for late delivery."


@dataclass(frozen=True)
class Eligibility:
    """Whether a line may be cancelled for late delivery at `at`, and the figures why."""

    line_id: int
    at: dt.datetime
    opens_at: dt.datetime
    accepted: int
    nodes: int
    refusal: type[Conflict] | None

    @property
    def eligible(self) -> bool:
        return self.refusal is None

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line_id,
            "at": _iso(self.at),
            "opens_at": _iso(self.opens_at),
            "accepted_nodes": self.accepted,
            "node_count": self.nodes,
        }

    def raise_if_refused(self) -> None:
        if self.refusal is not None:
            raise self.refusal(extra=self.as_dict())


def cancellation_opens_at(lease: Lease) -> dt.datetime:
    """Commencement + 30 calendar days of the contract zone, same local time (UTC)."""
    local = lease.commencement.astimezone(zone(lease.contract_timezone))
    return (local + dt.timedelta(days=CANCELLATION_AFTER_DAYS)).astimezone(dt.UTC)


def _hand_over_accepted(at: dt.datetime, prefix: str = "") -> Q:
    """Hand-over allocations (not a replacement's spare) accepted at `at`."""
    return Q(**{f"{prefix}replacement_for__isnull": True, f"{prefix}accepted_at__lte": at})


def accepted_nodes(line: LeaseLine, at: dt.datetime) -> int:
    """Hand-over nodes of the line accepted at `at` (not capped: see :func:`eligibility`)."""
    return Allocation.objects.filter(_hand_over_accepted(at), line=line).count()


def with_accepted(lines: QuerySet[LeaseLine], at: dt.datetime) -> QuerySet[LeaseLine]:
    """`lines` with ``accepted_now``, their hand-over nodes accepted at `at`, counted in the
    same query (a list of lines then needs no count per line)."""
    accepted = _hand_over_accepted(at, "allocations__")
    return lines.annotate(accepted_now=Count("allocations", filter=accepted))


def eligibility(line: LeaseLine, *, now: dt.datetime, accepted: int | None = None) -> Eligibility:
    """The rule applied to `line` (with its lease loaded) at `now`; no write.

    `accepted` is the line's accepted hand-over nodes at `now` when already counted
    (:func:`with_accepted`); never more than its node count."""
    lease = line.lease
    opens_at = cancellation_opens_at(lease)
    if accepted is None:
        accepted = accepted_nodes(line, now)
    accepted = min(accepted, line.node_count)
    refusal: type[Conflict] | None = None
    if line.status == LineStatus.CANCELLED:
        refusal = LineAlreadyCancelled
    elif line.status != LineStatus.OPEN or lease.status not in RUNNING or line.end <= now:
        refusal = LineNotOpen
    elif now < opens_at:
        refusal = LineCancellationNotYet
    elif accepted * 100 >= ACCEPTED_PERCENT_REQUIRED * line.node_count:
        refusal = LineDelivered
    return Eligibility(line.pk, now, opens_at, accepted, line.node_count, refusal)


def line_cancel_late_delivery(
    *,
    lease_id: int,
    line_id: int,
    party: str,
    actor: User | None,
    now: dt.datetime,
    reason: str = "",
) -> tuple[LeaseLine, Eligibility]:
    """Cancel the line for late delivery, under the lease's lock; the caller's transaction.

    Re-reads the line after the lock, so of two concurrent requests the second finds it
    cancelled (`line_already_cancelled`). Returns the cancelled line and the figures that
    allowed it. Run by `billing.cancellation.line_cancel_for_late_delivery`, which credits what
    was invoiced in the same transaction.
    """
    party = _party(party)
    lease = _lock_lease(lease_id)
    line = LeaseLine.objects.filter(lease=lease, pk=line_id).first()
    if line is None:
        raise NotFound("No such line on this lease.", extra={"line": line_id})
    line.lease = lease
    figures = eligibility(line, now=now)
    figures.raise_if_refused()
    line.status = LineStatus.CANCELLED
    line.effective_end = lease.commencement
    line.save(update_fields=["status", "effective_end"])
    running = Allocation.objects.filter(line=line, ends_at__gt=now)
    running.filter(starts_at__gte=now).delete()  # not begun: never handed over
    running.update(ends_at=now)
    _event(
        lease,
        EventKind.LINE_CANCELLED,
        party=party,
        actor=actor,
        at=now,
        reason=reason or "late delivery",
        data={**figures.as_dict(), "cause": "late_delivery", "nodes_freed_at": _iso(now)},
    )
    return line, figures
