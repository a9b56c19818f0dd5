"""Notices and their withdrawal: giving notice, asking to withdraw it, confirming that.

The earliest valid effective end binds (docs/rules/lease.md, "Notice", "Several notices",
"Withdrawal"): `_apply_notices` recomputes the lease's and lines' effective ends from the
binding notices, fits the allocations to them and moves the status (ACTIVE ⇄ NOTICE_GIVEN);
renewals the notice cancels follow. Locks in the order of docs/architecture.md: the lease, its
renewals, the notice, then clusters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from common.clock import resolve_now as _now

from . import rules
from .allocation import _fit_allocations, _lock_clusters
from .choices import SIGNED, LeaseStatus, LineStatus, NoticeOutcome, NoticeStatus
from .events import EventKind
from .exceptions import InvalidInput, NoticeNotAllowed, WithdrawalNotAllowed
from .models import Lease, LeaseLine, Notice
from .transitions import _event, _iso, _lock_lease, _party

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Notices that bind the lease's end (MOOT ones never do; WITHDRAWN ones no longer do).
BINDING_NOTICE = (NoticeStatus.RECORDED, NoticeStatus.EFFECTIVE)


def _binding_ends(lease: Lease, lines: Sequence[LeaseLine]) -> tuple[dt.datetime | None, dict]:
    """The earliest valid effective ends: of the whole lease, and per line (clamped).

    Whole-lease notices bind the lease; line notices bind their lines; if every line is bound,
    the lease ends when its last line does. Ends are clamped into `[commencement, term_end]`.
    A renewal whose predecessor is bound to end before the renewal commences is cancelled by
    the cancellation rule: its end is its commencement (it holds nothing) for as long as that
    binds, so a withdrawal on the predecessor brings it back.
    """
    notices = list(
        lease.notices.filter(
            status__in=BINDING_NOTICE,
            outcome__in=(NoticeOutcome.ENDS, NoticeOutcome.CANCELLED),
        ).prefetch_related("lines")
    )

    def clamp(value: dt.datetime) -> dt.datetime:
        return rules.holding_end(value, lease.commencement, lease.term_end)

    lease_end: dt.datetime | None = None
    line_ends: dict[int, dt.datetime] = {}
    for notice in notices:
        line_ids = [line.pk for line in notice.lines.all()]
        end = clamp(notice.effective_end)
        if not line_ids:
            lease_end = end if lease_end is None else min(lease_end, end)
        for line_id in line_ids:
            line_ends[line_id] = min(line_ends.get(line_id, end), end)
    if lines and all(line.pk in line_ends for line in lines):
        last = max(line_ends[line.pk] for line in lines)
        lease_end = last if lease_end is None else min(lease_end, last)
    if _predecessor_ends_before(lease):
        lease_end = lease.commencement
    return lease_end, line_ends


def _predecessor_ends_before(lease: Lease) -> bool:
    """Whether the lease renews a predecessor now bound to end before it commences."""
    if lease.predecessor_id is None:
        return False
    end = Lease.objects.filter(pk=lease.predecessor_id).values_list("effective_end", flat=True)
    predecessor_end = end.first()
    return predecessor_end is not None and predecessor_end < lease.commencement


def _lock_renewals(lease: Lease) -> list[Lease]:
    """Lock the signed renewals that follow `lease` (its successor, the successor's, ...), in
    order: each has a larger pk than the one it renews, so this keeps the lease lock order."""
    renewals: list[Lease] = []
    current = lease
    while True:
        successor = (
            Lease.objects.select_for_update()
            .filter(predecessor_id=current.pk, status__in=SIGNED)
            .first()
        )
        if successor is None:
            return renewals
        renewals.append(successor)
        current = successor


def _apply_to_renewals(renewals: Sequence[Lease], *, now: dt.datetime) -> None:
    """Recompute the renewals' ends after their predecessor's end moved (locked, in order)."""
    for renewal in renewals:
        _apply_notices(renewal, now=now)


def _apply_notices(lease: Lease, *, now: dt.datetime) -> None:
    """Recompute effective ends from the binding notices, fit the allocations to them, move
    the status (ACTIVE ⇄ NOTICE_GIVEN) and save the lease."""
    lines = list(lease.lines.exclude(status=LineStatus.CANCELLED).order_by("pk"))
    lease_end, line_ends = _binding_ends(lease, lines)
    lease.effective_end = lease_end
    for line in lines:
        line_end = line_ends.get(line.pk)
        if line_end != line.effective_end:
            line.effective_end = line_end
            line.save(update_fields=["effective_end"])
        line.lease = lease
        if lease.status != LeaseStatus.DRAFT and line.status == LineStatus.OPEN:
            _fit_allocations(line, lease.commencement, line.end, now=now)
    if lease.status == LeaseStatus.ACTIVE and lease.effective_end is not None:
        lease.status = LeaseStatus.NOTICE_GIVEN
    elif lease.status == LeaseStatus.NOTICE_GIVEN and lease.effective_end is None:
        lease.status = LeaseStatus.ACTIVE
    lease.save(update_fields=["status", "effective_end", "updated_at"])


@transaction.atomic
def notice_give(
    *,
    lease: Lease,
    party: str,
    lines: Sequence[LeaseLine] | None = None,
    requested_end: dt.datetime | None = None,
    reason: str = "",
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Notice:
    """Either party gives notice, for the whole lease or some of its lines.

    Allowed on a signed lease (SCHEDULED, ACTIVE, NOTICE_GIVEN) before it ends. Notice date =
    local date of `now`; effective end by `rules.notice_effective_end`. MOOT (term ends first)
    is recorded and changes nothing; otherwise the earliest valid effective end binds: the
    lease's or lines' `effective_end` moves and the allocations are shortened so the capacity
    frees up then (deleted if the lease is cancelled before commencement). If the lease was
    renewed, a notice that ends it before its term end cancels the renewal (it commences after
    the effective end): the renewal holds nothing from then on, and is CANCELLED when it was to
    commence, unless the notice is withdrawn first.
    """
    now = _now(now)
    party = _party(party)
    if requested_end is not None and timezone.is_naive(requested_end):
        raise InvalidInput(extra={"fields": {"requested_end": "Must be timezone-aware."}})
    lease = _lock_lease(lease)
    renewals = _lock_renewals(lease)
    if lease.status not in SIGNED or lease.end <= now:
        raise NoticeNotAllowed(
            "Notice can only be given on a scheduled or active lease that has not ended.",
            extra={"status": lease.status},
        )
    line_ids = sorted({line.pk for line in lines or ()})
    chosen: list[LeaseLine] = []
    if line_ids:
        chosen = list(lease.lines.filter(pk__in=line_ids, status=LineStatus.OPEN))
        if len(chosen) != len(line_ids):
            raise InvalidInput(
                extra={"fields": {"lines": "Every line must be an open line of this lease."}}
            )
    notice_date = rules.notice_date_of(now, lease.contract_timezone)
    q = rules.quote(lease, notice_date, requested_end)
    notice = Notice.objects.create(
        lease=lease,
        given_by=party,
        given_by_user=actor,
        received_at=now,
        notice_date=notice_date,
        requested_end=requested_end,
        effective_end=q.effective_end,
        outcome=q.outcome,
        status=NoticeStatus.MOOT if q.outcome == NoticeOutcome.MOOT else NoticeStatus.RECORDED,
        reason=reason[:500],
    )
    if chosen:
        notice.lines.set(chosen)
    before = lease.status
    if q.outcome != NoticeOutcome.MOOT:
        _apply_notices(lease, now=now)
        _apply_to_renewals(renewals, now=now)
    cancels = (
        renewals[0]
        if q.outcome != NoticeOutcome.MOOT and renewals and _predecessor_ends_before(renewals[0])
        else None
    )
    _event(
        lease,
        EventKind.NOTICE_RECEIVED,
        party=party,
        actor=actor,
        at=now,
        from_status=before,
        to_status=lease.status,
        reason=reason,
        data={
            "notice": notice.pk,
            "notice_date": notice_date.isoformat(),
            "effective_end": _iso(q.effective_end),
            "outcome": q.outcome,
            "lines": line_ids,
            "lease_effective_end": _iso(lease.effective_end),
            "cancels_successor": cancels.number if cancels else None,
        },
    )
    return notice


def _lock_notice(notice: Notice, *, renewals: bool = False) -> tuple[Lease, list[Lease], Notice]:
    """Lock the notice's lease, its renewals if asked, then the notice (the lock order)."""
    lease = _lock_lease(notice.lease_id)
    renewed = _lock_renewals(lease) if renewals else []
    return lease, renewed, Notice.objects.select_for_update().get(pk=notice.pk)


@transaction.atomic
def notice_withdraw_request(
    *,
    notice: Notice,
    party: str,
    reason: str = "",
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Notice:
    """A party asks to withdraw a recorded notice; it stays binding until the other confirms.

    Only a RECORDED notice not yet effective, with no request already pending. Billing may
    already have credited the days after its end: the next billing run bills them again on a
    supplementary invoice once the withdrawal is confirmed.
    """
    now = _now(now)
    party = _party(party)
    lease, _, notice = _lock_notice(notice)
    if notice.status != NoticeStatus.RECORDED or notice.effective_end <= now:
        raise WithdrawalNotAllowed(
            "Only a recorded notice that is not yet effective can be withdrawn.",
            extra={"status": notice.status},
        )
    if notice.withdrawal_requested_by:
        raise WithdrawalNotAllowed(
            "A withdrawal is already pending.",
            extra={"requested_by": notice.withdrawal_requested_by},
        )
    notice.withdrawal_requested_by = party
    notice.withdrawal_requested_at = now
    notice.save(update_fields=["withdrawal_requested_by", "withdrawal_requested_at"])
    _event(
        lease,
        EventKind.NOTICE_WITHDRAWAL_REQUESTED,
        party=party,
        actor=actor,
        at=now,
        reason=reason,
        data={"notice": notice.pk},
    )
    return notice


@transaction.atomic
def notice_withdraw_confirm(
    *,
    notice: Notice,
    party: str,
    reason: str = "",
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Notice:
    """The other party confirms a pending withdrawal: the notice is WITHDRAWN.

    Ends are recomputed from the remaining notices and the allocations extended back; if some
    of those nodes were leased to someone else meanwhile, `capacity_unavailable` and nothing
    changes. Rent the lease now owes for months already invoiced (or credited) is billed by
    the next billing run on supplementary invoices, once per month and withdrawal. A renewal
    the notice had cancelled holds its capacity again (on free nodes of its clusters).
    """
    now = _now(now)
    party = _party(party)
    lease, renewals, notice = _lock_notice(notice, renewals=True)
    if notice.status != NoticeStatus.RECORDED or notice.effective_end <= now:
        raise WithdrawalNotAllowed(
            "Only a recorded notice that is not yet effective can be withdrawn.",
            extra={"status": notice.status},
        )
    if not notice.withdrawal_requested_by:
        raise WithdrawalNotAllowed("No withdrawal was requested.")
    if notice.withdrawal_requested_by == party:
        raise WithdrawalNotAllowed(
            "The other party must confirm the withdrawal.",
            extra={"requested_by": notice.withdrawal_requested_by},
        )
    notice.status = NoticeStatus.WITHDRAWN
    notice.withdrawn_at = now
    notice.save(update_fields=["status", "withdrawn_at"])
    _lock_clusters(
        LeaseLine.objects.filter(lease_id__in=[lease.pk, *(r.pk for r in renewals)]).values_list(
            "cluster_id", flat=True
        )
    )
    before = lease.status
    _apply_notices(lease, now=now)
    _apply_to_renewals(renewals, now=now)
    _event(
        lease,
        EventKind.NOTICE_WITHDRAWN,
        party=party,
        actor=actor,
        at=now,
        from_status=before,
        to_status=lease.status,
        reason=reason,
        data={"notice": notice.pk, "lease_effective_end": _iso(lease.effective_end)},
    )
    return notice
