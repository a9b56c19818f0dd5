"""The boundary job: apply every lease boundary that is due, catching up on what was missed.

Notices become effective, leases and lines are cancelled or end (TERMINATED early, EXPIRED at
term end), scheduled leases activate, and ended leases not released within the drain grace go
to HOLDOVER (docs/rules/lease.md, "States", "End, drain grace and holdover"). Each lease is
handled in its own transaction under its row lock with state re-read (docs/architecture.md,
"Lock order"), so a second run finds nothing due.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.db.models import Q

from common.clock import resolve_now as _now

from .choices import ENDED, SIGNED, LeaseStatus, LineStatus, NoticeOutcome, NoticeStatus, Party
from .events import EventKind
from .exceptions import DomainError
from .models import Lease, Notice
from .transitions import _activate, _event, _iso, _lock_lease

logger = logging.getLogger(__name__)


def _apply_due_boundaries(lease_id: int, *, now: dt.datetime) -> list[str]:
    """Apply every boundary due at `now` to one lease, under its lock; returns event kinds.

    Re-reads everything after locking, so running it twice (or concurrently) changes nothing
    the second time. Order within the lease: notices become effective, cancellation, lines
    end, activation, end of the lease, holdover — so a late run catches up in one pass.
    """
    kinds: list[str] = []
    with transaction.atomic():
        lease = _lock_lease(lease_id)
        system: dict[str, Any] = {"party": Party.SYSTEM, "actor": None, "at": now}

        def emit(kind: str, **kw: Any) -> None:
            _event(lease, kind, **system, **kw)
            kinds.append(kind)

        due = list(
            lease.notices.filter(status=NoticeStatus.RECORDED, effective_end__lte=now)
            .order_by("effective_end", "pk")
            .select_for_update()
        )
        for notice in due:
            notice.status = NoticeStatus.EFFECTIVE
            notice.save(update_fields=["status"])
            emit(
                EventKind.NOTICE_EFFECTIVE,
                data={"notice": notice.pk, "effective_end": _iso(notice.effective_end)},
            )
        if lease.status in SIGNED:
            effective_cancels = list(
                lease.notices.filter(
                    status=NoticeStatus.EFFECTIVE, outcome=NoticeOutcome.CANCELLED
                ).prefetch_related("lines")
            )
            whole_cancel = any(not n.lines.all() for n in effective_cancels)
            cancelled_lines = {line.pk for n in effective_cancels for line in n.lines.all()}
            started = lease.commencement <= now
            if whole_cancel or (started and lease.end <= lease.commencement):
                before = lease.status
                lease.status = LeaseStatus.CANCELLED
                lease.save(update_fields=["status", "updated_at"])
                lease.lines.filter(status=LineStatus.OPEN).update(status=LineStatus.CANCELLED)
                emit(EventKind.LEASE_CANCELLED, from_status=before, to_status=lease.status)
                return kinds
            for line in lease.lines.filter(status=LineStatus.OPEN).order_by("pk"):
                line.lease = lease
                if line.effective_end is not None and (
                    line.pk in cancelled_lines or (started and line.end <= lease.commencement)
                ):
                    line.status = LineStatus.CANCELLED
                    line.save(update_fields=["status"])
                    emit(EventKind.LINE_CANCELLED, data={"line": line.pk})
                elif started and line.effective_end is not None and line.end <= now:
                    line.status = LineStatus.ENDED
                    line.save(update_fields=["status"])
                    emit(EventKind.LINE_ENDED, data={"line": line.pk, "end": _iso(line.end)})
            if lease.status == LeaseStatus.SCHEDULED and started:
                _activate(lease, party=Party.SYSTEM, actor=None, now=now)
                kinds.append(EventKind.LEASE_ACTIVATED)
            if lease.status in (LeaseStatus.ACTIVE, LeaseStatus.NOTICE_GIVEN) and lease.end <= now:
                early = lease.effective_end is not None and lease.effective_end < lease.term_end
                before = lease.status
                lease.status = LeaseStatus.TERMINATED if early else LeaseStatus.EXPIRED
                renewal = (
                    None
                    if early
                    else Lease.objects.filter(predecessor=lease, commencement=lease.term_end)
                    .exclude(status__in=(LeaseStatus.VOID, LeaseStatus.CANCELLED))
                    .only("pk", "number")
                    .first()
                )
                handed_over = renewal is not None
                if handed_over:
                    # The renewal holds the same nodes from this instant: nothing to release.
                    lease.released_at = lease.term_end
                lease.save(update_fields=["status", "released_at", "updated_at"])
                lease.lines.filter(status=LineStatus.OPEN).update(status=LineStatus.ENDED)
                emit(
                    EventKind.LEASE_TERMINATED if early else EventKind.LEASE_EXPIRED,
                    from_status=before,
                    to_status=lease.status,
                    data={"end": _iso(lease.end), "handed_over_to_renewal": handed_over},
                )
                if renewal is not None:  # handed over
                    # The release is real (the nodes left this lease, to its renewal), so it is
                    # recorded like any other: receivers waiting for `lease.released` (reclaim)
                    # see it. No status change: the lease stays EXPIRED, nothing to confirm.
                    emit(
                        EventKind.LEASE_RELEASED,
                        reason=f"handed over to renewal {renewal.number}",
                        data={
                            "released_at": _iso(lease.released_at),
                            "successor": renewal.number,
                            "successor_id": renewal.pk,
                        },
                    )
        if (
            lease.status in ENDED
            and lease.released_at is None
            and lease.end + dt.timedelta(hours=lease.drain_grace_hours) <= now
        ):
            before = lease.status
            lease.status = LeaseStatus.HOLDOVER
            lease.save(update_fields=["status", "updated_at"])
            emit(
                EventKind.LEASE_HOLDOVER,
                from_status=before,
                to_status=lease.status,
                data={"since": _iso(lease.end + dt.timedelta(hours=lease.drain_grace_hours))},
            )
    return kinds


def due_lease_ids(*, now: dt.datetime) -> list[int]:
    """Leases with a boundary due at `now`: four indexed queries, whatever the fleet size."""
    ids: set[int] = set()
    ids.update(
        Notice.objects.filter(status=NoticeStatus.RECORDED, effective_end__lte=now).values_list(
            "lease_id", flat=True
        )
    )
    ids.update(
        Lease.objects.filter(status=LeaseStatus.SCHEDULED, commencement__lte=now).values_list(
            "pk", flat=True
        )
    )
    ids.update(
        Lease.objects.filter(status__in=(LeaseStatus.ACTIVE, LeaseStatus.NOTICE_GIVEN))
        .filter(Q(term_end__lte=now) | Q(effective_end__lte=now))
        .values_list("pk", flat=True)
    )
    # Ended, not released: few rows (they move on within the grace); the grace is per lease.
    for pk, effective_end, term_end, grace in Lease.objects.filter(
        status__in=ENDED, released_at__isnull=True
    ).values_list("pk", "effective_end", "term_end", "drain_grace_hours"):
        if (effective_end or term_end) + dt.timedelta(hours=grace) <= now:
            ids.add(pk)
    return sorted(ids)


def process_boundaries(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Apply every lease boundary due at `now`, catching up on all that was missed.

    Activates, makes notices effective, cancels, ends (TERMINATED early, EXPIRED at term end)
    and moves to HOLDOVER after the drain grace. Each lease is settled in its own transaction
    under its row lock with state re-read, so a second or concurrent run finds nothing to do.
    Returns the number of events written per kind.
    """
    now = _now(now)
    counts: dict[str, int] = {}
    for lease_id in due_lease_ids(now=now):
        try:
            kinds = _apply_due_boundaries(lease_id, now=now)
        except DomainError as exc:
            # One lease refusing (e.g. deleted meanwhile) must not stop the others.
            logger.warning("boundary of lease %s not applied: %s (%s)", lease_id, exc, exc.code)
            counts["refused"] = counts.get("refused", 0) + 1
            continue
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return counts
