"""Leasing services: every write to leases, notices and allocations goes through here.

Each service is keyword-only, atomic, takes `now=` (the clock is an argument) and `actor=` (the
Django user acting, or None for the system), computes dates with `leasing.rules`, writes one or
more `LeaseEvent` rows, and refuses what the rules forbid with a coded `DomainError` from
`leasing.exceptions` — writing nothing when it does (the whole service is one transaction).

Lock order (every service takes locks in this order, so concurrent calls cannot deadlock):
  1. lease rows, by pk;
  2. notice rows of that lease;
  3. the lease-number series row of the year;
  4. cluster rows, by pk — the allocation mutex (see `_lock_clusters`).
State is re-read after locking and checked again: a transition decided on a stale read is
never applied.

No overcommit: a node is held by at most one allocation at any instant. Allocation runs under
the cluster lock and reads the free nodes after taking it, so two requests for the same cluster
are serialized and the second sees the first's rows. On PostgreSQL the exclusion constraint of
migration 0002 rejects any overlap that slips past (SQLSTATE 23P01 → `capacity_unavailable`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q
from django.utils import timezone

from clusters.models import ALLOCATABLE_STATUSES, Cluster, Node
from common.clock import resolve_now as _now
from common.contract_time import local_date, zone
from common.db import lock_row
from common.money import DEFAULT_CURRENCY, round_money, to_decimal

from . import rules
from .choices import (
    ENDED,
    SIGNED,
    UNRELEASED,
    LeaseStatus,
    LineStatus,
    ListingEventKind,
    ListingStatus,
    ListingVisibility,
    NoticeOutcome,
    NoticeStatus,
    Party,
)
from .events import EventKind, publish
from .exceptions import (
    CapacityUnavailable,
    DomainError,
    InvalidInput,
    ListingUnavailable,
    NoticeNotAllowed,
    ReleaseNotAllowed,
    RenewalNotAllowed,
    TransitionNotAllowed,
    WithdrawalNotAllowed,
)
from .models import (
    DEFAULT_NOTICE_DAYS,
    DEFAULT_TERM_DAYS,
    Allocation,
    Lease,
    LeaseEvent,
    LeaseLine,
    LeaseNumberSeries,
    Listing,
    ListingEvent,
    Notice,
    Tenant,
)
from .selectors import held_during

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

EXCLUSION_VIOLATION = "23P01"
ALLOCATION_BATCH = 5_000

# Notices that bind the lease's end (MOOT ones never do; WITHDRAWN ones no longer do).
BINDING_NOTICE = (NoticeStatus.RECORDED, NoticeStatus.EFFECTIVE)


@dataclass(frozen=True)
class LineSpec:
    """One line of a lease to create: `node_count` nodes of `cluster` at `monthly_rate` USD."""

    cluster: Cluster
    node_count: int
    monthly_rate: Decimal


# --- helpers -------------------------------------------------------------------------------------


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


def _lock_clusters(cluster_ids: Iterable[int]) -> None:
    """Lock the cluster rows in pk order: the allocation mutex of those clusters.

    Holding it, the free nodes read afterwards (a new statement, so a new snapshot under READ
    COMMITTED) include every allocation committed before; a second allocator of the same
    cluster waits here. One row lock instead of thousands of node locks; `no_key` keeps
    inserts that only reference the cluster (foreign keys) unblocked.
    """
    ids = sorted(set(cluster_ids))
    if not ids:
        return
    if connection.vendor == "sqlite":
        Cluster.objects.filter(pk__in=ids).update(slug=F("slug"))
        return
    list(
        Cluster.objects.filter(pk__in=ids)
        .order_by("pk")
        .select_for_update(no_key=True)
        .values_list("pk", flat=True)
    )


def _next_lease_number(now: dt.datetime) -> str:
    """`L-<year>-<nnnn>`: the year's counter row is inserted if missing, then locked."""
    year = now.astimezone(dt.UTC).year
    LeaseNumberSeries.objects.bulk_create([LeaseNumberSeries(year=year)], ignore_conflicts=True)
    series = LeaseNumberSeries.objects.select_for_update().get(year=year)
    series.last_value += 1
    series.save(update_fields=["last_value"])
    return f"L-{year}-{series.last_value:04d}"


def _is_exclusion_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == EXCLUSION_VIOLATION or EXCLUSION_VIOLATION in str(
        getattr(cause, "pgcode", "")
    )


def free_node_ids(
    cluster_id: int,
    start: dt.datetime,
    end: dt.datetime,
    limit: int | None = None,
    *,
    now: dt.datetime,
) -> list[int]:
    """Healthy nodes of the cluster free over `[start, end)`, by pk.

    A node is free when no allocation holds it at any instant of the period, by the rule every
    capacity figure shares (`selectors.held_during`: overlapping rows, and the rows of an ended
    lease whose release is not confirmed, up to that release). `now` is required: the answer
    depends on it, and a caller on a simulated clock must never be judged by the real one.

    One set-based query (NOT EXISTS over the allocation index); call it holding the cluster
    lock if the answer is going to be used to allocate.
    """
    busy = Allocation.objects.filter(node=OuterRef("pk")).filter(held_during(start, end, now=now))
    qs = (
        Node.objects.filter(cluster_id=cluster_id, status__in=ALLOCATABLE_STATUSES)
        .filter(~Exists(busy))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return list(qs if limit is None else qs[:limit])


def _insert_allocations(
    line_id: int, node_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> None:
    try:
        Allocation.objects.bulk_create(
            (
                Allocation(line_id=line_id, node_id=n, starts_at=start, ends_at=end)
                for n in node_ids
            ),
            batch_size=ALLOCATION_BATCH,
        )
    except IntegrityError as exc:
        if _is_exclusion_violation(exc):
            raise CapacityUnavailable(
                "A node was already held over that period.", extra={"line": line_id}
            ) from exc
        raise


def _allocate_line(
    line: LeaseLine, start: dt.datetime, end: dt.datetime, *, now: dt.datetime
) -> int:
    """Allocate `line.node_count` free healthy nodes of its cluster over `[start, end)`."""
    node_ids = free_node_ids(line.cluster_id, start, end, line.node_count, now=now)
    if len(node_ids) < line.node_count:
        raise CapacityUnavailable(
            extra={
                "cluster": line.cluster_id,
                "requested": line.node_count,
                "available": len(node_ids),
                "starts_at": _iso(start),
                "ends_at": _iso(end),
            }
        )
    _insert_allocations(line.pk, node_ids, start, end)
    return len(node_ids)


def _fit_allocations(
    line: LeaseLine, start: dt.datetime, end: dt.datetime, *, now: dt.datetime
) -> None:
    """Make the line's allocations cover exactly `[start, end)` (end moved by a notice).

    Shortening frees capacity at once; an empty period (cancellation) deletes the rows;
    extending (a withdrawn notice) re-checks the same nodes and needs the cluster lock.
    """
    qs = Allocation.objects.filter(line=line)
    if end <= start:
        qs.delete()
        return
    current = qs.aggregate(end=Max("ends_at"), n=Count("id"))
    if current["n"] == 0:
        _allocate_line(line, start, end, now=now)
        return
    if end < current["end"]:
        qs.filter(ends_at__gt=end).update(ends_at=end)
        return
    if end > current["end"]:
        taken = Allocation.objects.filter(
            node_id__in=qs.values("node_id"), starts_at__lt=end, ends_at__gt=current["end"]
        ).exclude(line=line)
        if taken.exists():
            raise CapacityUnavailable(
                "Some of these nodes are held by another lease after the notice's end.",
                extra={"line": line.pk, "ends_at": _iso(end)},
            )
        try:
            with transaction.atomic():
                qs.update(ends_at=end)
        except IntegrityError as exc:
            if _is_exclusion_violation(exc):
                raise CapacityUnavailable(extra={"line": line.pk}) from exc
            raise


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


# --- listings --------------------------------------------------------------------------------


def _listing_move(
    listing: Listing,
    allowed: Iterable[str],
    to: str,
    kind: str,
    refusal: str,
    *,
    actor: User | None,
    now: dt.datetime,
) -> Listing:
    """Move a locked, freshly read listing from one of `allowed` to `to`, or refuse; record who
    did it (`ListingEvent`)."""
    listing = lock_row(Listing, listing.pk)
    if listing.status not in allowed:
        raise TransitionNotAllowed(refusal, extra={"status": listing.status})
    before = listing.status
    listing.status = to
    listing.save(update_fields=["status"])
    ListingEvent.objects.create(
        listing=listing, kind=kind, from_status=before, to_status=to, actor=actor, at=now
    )
    return listing


@transaction.atomic
def listing_publish(
    *, listing: Listing, actor: User | None = None, now: dt.datetime | None = None
) -> Listing:
    """DRAFT or WITHDRAWN → PUBLISHED: the listing is offered (publicly or to its tenant)."""
    return _listing_move(
        listing,
        (ListingStatus.DRAFT, ListingStatus.WITHDRAWN),
        ListingStatus.PUBLISHED,
        ListingEventKind.PUBLISHED,
        "The listing is already published.",
        actor=actor,
        now=_now(now),
    )


@transaction.atomic
def listing_withdraw(
    *, listing: Listing, actor: User | None = None, now: dt.datetime | None = None
) -> Listing:
    """PUBLISHED → WITHDRAWN: no new requests; existing leases are untouched."""
    return _listing_move(
        listing,
        (ListingStatus.PUBLISHED,),
        ListingStatus.WITHDRAWN,
        ListingEventKind.WITHDRAWN,
        "Only a published listing can be withdrawn.",
        actor=actor,
        now=_now(now),
    )


# --- lease lifecycle ---------------------------------------------------------------------------


@transaction.atomic
def lease_create(
    *,
    tenant: Tenant,
    lines: Sequence[LineSpec],
    commencement_date: dt.date,
    contract_timezone: str = "UTC",
    term_days: int = DEFAULT_TERM_DAYS,
    notice_days: int = DEFAULT_NOTICE_DAYS,
    currency: str = DEFAULT_CURRENCY,
    listing: Listing | None = None,
    reference: str = "",
    party: str = Party.OPERATOR,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Lease:
    """Create a DRAFT lease with its lines (an operator deal, or a tenant's request).

    Dates by the rules: commencement and term end are local midnights in `contract_timezone`.
    The commencement date may not be before today (local). Nothing is allocated until approval.
    """
    now = _now(now)
    party = _party(party)
    errors: dict[str, str] = {}
    try:
        zone(contract_timezone)
    except ValueError:
        errors["contract_timezone"] = "Unknown time zone."
    if not lines:
        errors["lines"] = "A lease needs at least one line."
    if term_days <= 0:
        errors["term_days"] = "Must be positive."
    if notice_days < 0:
        errors["notice_days"] = "Must not be negative."
    for spec in lines:
        if spec.node_count <= 0:
            errors["node_count"] = "Must be positive."
        if to_decimal(spec.monthly_rate) < 0:
            errors["monthly_rate"] = "Must not be negative."
    if "contract_timezone" not in errors and commencement_date < local_date(now, contract_timezone):
        errors["commencement_date"] = "Must not be in the past."
    if errors:
        raise InvalidInput(extra={"fields": errors})
    lease = Lease.objects.create(
        number=_next_lease_number(now),
        tenant=tenant,
        listing=listing,
        status=LeaseStatus.DRAFT,
        currency=currency,
        contract_timezone=contract_timezone,
        commencement_date=commencement_date,
        commencement=rules.commencement_instant(commencement_date, contract_timezone),
        term_days=term_days,
        notice_days=notice_days,
        term_end=rules.term_end(commencement_date, term_days, contract_timezone),
        reference=reference,
        requested_by=actor,
    )
    LeaseLine.objects.bulk_create(
        LeaseLine(
            lease=lease,
            cluster=spec.cluster,
            node_count=spec.node_count,
            monthly_rate=round_money(spec.monthly_rate),
        )
        for spec in lines
    )
    kind = EventKind.LEASE_REQUESTED if party == Party.TENANT else EventKind.LEASE_CREATED
    _event(
        lease,
        kind,
        party=party,
        actor=actor,
        at=now,
        to_status=LeaseStatus.DRAFT,
        data={
            "commencement": _iso(lease.commencement),
            "term_end": _iso(lease.term_end),
            "lines": [
                {
                    "cluster": spec.cluster.pk,
                    "node_count": spec.node_count,
                    "monthly_rate": str(round_money(spec.monthly_rate)),
                }
                for spec in lines
            ],
        },
    )
    return lease


@transaction.atomic
def lease_request(
    *,
    tenant: Tenant,
    listing: Listing,
    node_count: int,
    commencement_date: dt.date,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Lease:
    """A tenant asks for `node_count` nodes of a listing from `commencement_date` (DRAFT).

    The listing must be published and visible to the tenant (`listing_unavailable`), the count
    within the listing, the date on or after its earliest start (`validation_error`). Price,
    term, notice and zone come from the listing.
    """
    now = _now(now)
    listing = Listing.objects.select_related("cluster").get(pk=listing.pk)
    visible = listing.visibility == ListingVisibility.PUBLIC or (
        listing.private_tenant_id == tenant.pk
    )
    if listing.status != ListingStatus.PUBLISHED or not visible:
        raise ListingUnavailable(extra={"listing": listing.pk})
    errors = {}
    if not 0 < node_count <= listing.node_count:
        errors["node_count"] = f"Must be between 1 and {listing.node_count}."
    if commencement_date < listing.earliest_start:
        errors["commencement_date"] = f"Must be on or after {listing.earliest_start}."
    if errors:
        raise InvalidInput(extra={"fields": errors})
    return lease_create(
        tenant=tenant,
        lines=[
            LineSpec(
                cluster=listing.cluster,
                node_count=node_count,
                monthly_rate=listing.monthly_rate_per_node * node_count,
            )
        ],
        commencement_date=commencement_date,
        contract_timezone=listing.contract_timezone,
        term_days=listing.term_days,
        notice_days=listing.notice_days,
        currency=listing.currency,
        listing=listing,
        party=Party.TENANT,
        actor=actor,
        now=now,
    )


@transaction.atomic
def lease_approve(
    *, lease: Lease, actor: User | None = None, now: dt.datetime | None = None
) -> Lease:
    """DRAFT → SCHEDULED (or ACTIVE if commencement ≤ now): allocate concrete nodes.

    Each line gets `node_count` healthy nodes of its cluster free over the whole
    `[commencement, term_end)`; if any line cannot be met, `capacity_unavailable` and nothing
    is written. A lease whose whole term is already past cannot be approved.
    """
    now = _now(now)
    lease = _lock_lease(lease)
    if lease.status != LeaseStatus.DRAFT:
        raise TransitionNotAllowed(
            f"Only a draft lease can be approved (this one is {lease.status}).",
            extra={"status": lease.status},
        )
    if lease.term_end <= now:
        raise TransitionNotAllowed("The lease's term is already over.")
    lines = list(lease.lines.order_by("pk"))
    _lock_clusters(line.cluster_id for line in lines)
    allocated = {}
    for line in lines:
        allocated[line.pk] = _allocate_line(line, lease.commencement, lease.term_end, now=now)
    _move(
        lease,
        LeaseStatus.SCHEDULED,
        EventKind.LEASE_APPROVED,
        party=Party.OPERATOR,
        actor=actor,
        now=now,
        data={"allocated_nodes": allocated},
    )
    if lease.commencement <= now:
        _activate(lease, party=Party.OPERATOR, actor=actor, now=now)
    return lease


@transaction.atomic
def lease_reject(
    *, lease: Lease, reason: str = "", actor: User | None = None, now: dt.datetime | None = None
) -> Lease:
    """DRAFT → VOID: the operator declines the request. Nothing was allocated."""
    now = _now(now)
    lease = _lock_lease(lease)
    if lease.status != LeaseStatus.DRAFT:
        raise TransitionNotAllowed(
            "Only a draft lease can be rejected.", extra={"status": lease.status}
        )
    _move(
        lease,
        LeaseStatus.VOID,
        EventKind.LEASE_REJECTED,
        party=Party.OPERATOR,
        actor=actor,
        now=now,
        reason=reason,
    )
    return lease


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


@transaction.atomic
def lease_activate(
    *, lease: Lease, actor: User | None = None, now: dt.datetime | None = None
) -> Lease:
    """SCHEDULED → ACTIVE once commencement ≤ now (NOTICE_GIVEN if a notice already binds)."""
    now = _now(now)
    lease = _lock_lease(lease)
    if lease.status != LeaseStatus.SCHEDULED:
        raise TransitionNotAllowed(
            "Only a scheduled lease can be activated.", extra={"status": lease.status}
        )
    if lease.commencement > now:
        raise TransitionNotAllowed(
            "The lease has not commenced yet.", extra={"commencement": _iso(lease.commencement)}
        )
    if lease.end <= lease.commencement:
        raise TransitionNotAllowed("The lease was cancelled before commencement.")
    _activate(lease, party=Party.SYSTEM if actor is None else Party.OPERATOR, actor=actor, now=now)
    return lease


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


@transaction.atomic
def lease_renew(
    *,
    lease: Lease,
    monthly_rates: dict[int, Decimal] | None = None,
    reference: str = "",
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Lease:
    """A successor lease from the predecessor's term end, on the same nodes (SCHEDULED).

    Only a signed lease running to its term end (no notice in flight, no successor yet) before
    that end; a moot notice does not block it (the lease runs to its term end all the same).
    Lines ended by a notice are not renewed. `monthly_rates` maps predecessor
    line ids to new rates (default: unchanged); `reference` is the successor's deal reference.
    The predecessor row is never modified.
    """
    now = _now(now)
    lease = _lock_lease(lease)
    if (
        lease.status not in (LeaseStatus.SCHEDULED, LeaseStatus.ACTIVE)
        or lease.effective_end is not None
        or lease.term_end <= now
    ):
        raise RenewalNotAllowed(extra={"status": lease.status})
    if Lease.objects.filter(predecessor=lease).exists():
        raise RenewalNotAllowed("This lease was already renewed.")
    if lease.notices.filter(status=NoticeStatus.RECORDED).exists():
        raise RenewalNotAllowed("A notice is in flight on this lease.")
    lines = list(
        lease.lines.filter(status=LineStatus.OPEN, effective_end__isnull=True).order_by("pk")
    )
    if not lines:
        raise RenewalNotAllowed("No line runs to the term end.")
    rates = monthly_rates or {}
    tz = lease.contract_timezone
    start_date = local_date(lease.term_end, tz)
    successor = Lease.objects.create(
        number=_next_lease_number(now),
        tenant_id=lease.tenant_id,
        listing_id=lease.listing_id,
        status=LeaseStatus.SCHEDULED,
        currency=lease.currency,
        contract_timezone=tz,
        commencement_date=start_date,
        commencement=rules.commencement_instant(start_date, tz),
        term_days=lease.term_days,
        notice_days=lease.notice_days,
        term_end=rules.term_end(start_date, lease.term_days, tz),
        drain_grace_hours=lease.drain_grace_hours,
        predecessor=lease,
        reference=reference,
        requested_by=actor,
    )
    _lock_clusters(line.cluster_id for line in lines)
    for line in lines:
        new_line = LeaseLine.objects.create(
            lease=successor,
            cluster_id=line.cluster_id,
            node_count=line.node_count,
            monthly_rate=round_money(rates.get(line.pk, line.monthly_rate)),
        )
        node_ids = list(
            Allocation.objects.filter(line=line, ends_at=lease.term_end)
            .order_by("node_id")
            .values_list("node_id", flat=True)
        )
        taken = Allocation.objects.filter(
            node_id__in=node_ids,
            starts_at__lt=successor.term_end,
            ends_at__gt=successor.commencement,
        )
        if len(node_ids) != line.node_count or taken.exists():
            raise CapacityUnavailable(
                "Some of the lease's nodes are not available for the renewal term.",
                extra={"line": line.pk},
            )
        _insert_allocations(new_line.pk, node_ids, successor.commencement, successor.term_end)
    _event(
        successor,
        EventKind.LEASE_CREATED,
        party=Party.OPERATOR,
        actor=actor,
        at=now,
        to_status=LeaseStatus.SCHEDULED,
        data={"predecessor": lease.number, "term_end": _iso(successor.term_end)},
    )
    _event(
        lease,
        EventKind.LEASE_RENEWED,
        party=Party.OPERATOR,
        actor=actor,
        at=now,
        data={"successor": successor.number, "successor_id": successor.pk},
    )
    return successor


@transaction.atomic
def lease_release_confirm(
    *,
    lease: Lease,
    released_at: dt.datetime | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Lease:
    """The operator confirms the nodes are back: TERMINATED/EXPIRED/HOLDOVER → CLOSED.

    `released_at` (default now) is when the nodes were released; it stops holdover billing. It
    cannot be before the lease's end nor in the future.
    """
    now = _now(now)
    released_at = released_at or now
    lease = _lock_lease(lease)
    if lease.status not in UNRELEASED or lease.released_at is not None:
        raise ReleaseNotAllowed(extra={"status": lease.status})
    if not lease.end <= released_at <= now:
        raise InvalidInput(
            extra={"fields": {"released_at": "Must be between the lease's end and now."}}
        )
    before = lease.status
    lease.released_at = released_at
    lease.status = LeaseStatus.CLOSED
    lease.save(update_fields=["released_at", "status", "updated_at"])
    _event(
        lease,
        EventKind.LEASE_RELEASED,
        party=Party.OPERATOR,
        actor=actor,
        at=now,
        from_status=before,
        to_status=LeaseStatus.CLOSED,
        data={"released_at": _iso(released_at)},
    )
    return lease


# --- boundaries ------------------------------------------------------------------------------


def _settle(lease_id: int, *, now: dt.datetime) -> list[str]:
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
            kinds = _settle(lease_id, now=now)
        except DomainError as exc:
            # One lease refusing (e.g. deleted meanwhile) must not stop the others.
            logger.warning("boundary of lease %s not applied: %s (%s)", lease_id, exc, exc.code)
            counts["refused"] = counts.get("refused", 0) + 1
            continue
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return counts
