"""Leasing services: listings and the lease lifecycle (create, request, approve, reject,
activate, renew, confirm the release), by the rules of docs/rules/lease.md.

The other leasing writes live by concern: `leasing.notices` (notices and their withdrawal),
`leasing.boundaries` (the boundary job), `leasing.allocation` (free nodes, allocating them,
the cluster lock); the steps they share (audit event, status move, lease lock) are in
`leasing.transitions`.

Each service is keyword-only, atomic, takes `now=` (the clock is an argument) and `actor=` (the
Django user acting, or None for the system), computes dates with `leasing.rules`, writes one or
more `LeaseEvent` rows, and refuses what the rules forbid with a coded `DomainError` from
`leasing.exceptions` — writing nothing when it does (the whole service is one transaction).

Lock order (every leasing service takes locks in this order, so concurrent calls cannot
deadlock; docs/architecture.md, "Lock order"):
  1. lease rows, by pk;
  2. notice rows of that lease;
  3. the lease-number series row of the year;
  4. cluster rows, by pk — the allocation mutex (see `leasing.allocation._lock_clusters`).
State is re-read after locking and checked again: a transition decided on a stale read is
never applied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction

from clusters.models import Cluster
from common.clock import resolve_now as _now
from common.contract_time import local_date, zone
from common.db import lock_row
from common.money import DEFAULT_CURRENCY, round_money, to_decimal

from . import rules
from .allocation import _allocate_line, _insert_allocations, _lock_clusters
from .choices import (
    SIGNED,  # noqa: F401  re-exported: billing/selectors.py imports it from here (use .choices)
    UNRELEASED,
    LeaseStatus,
    LineStatus,
    ListingEventKind,
    ListingStatus,
    ListingVisibility,
    NoticeStatus,
    Party,
    TenantStanding,
)
from .events import EventKind
from .exceptions import (
    CapacityUnavailable,
    InvalidInput,
    ListingUnavailable,
    ReleaseNotAllowed,
    RenewalNotAllowed,
    TenantDelinquent,
    TransitionNotAllowed,
)
from .models import (
    DEFAULT_NOTICE_DAYS,
    DEFAULT_TERM_DAYS,
    Allocation,
    Lease,
    LeaseLine,
    LeaseNumberSeries,
    Listing,
    ListingEvent,
    Tenant,
)
from .notices import notice_give  # noqa: F401  re-exported: billing/demo.py calls it from here
from .transitions import _activate, _event, _iso, _lock_lease, _move, _party

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class LineSpec:
    """One line of a lease to create: `node_count` nodes of `cluster` at `monthly_rate` USD."""

    cluster: Cluster
    node_count: int
    monthly_rate: Decimal


def _next_lease_number(now: dt.datetime) -> str:
    """`L-<year>-<nnnn>`: the year's counter row is inserted if missing, then locked."""
    year = now.astimezone(dt.UTC).year
    LeaseNumberSeries.objects.bulk_create([LeaseNumberSeries(year=year)], ignore_conflicts=True)
    series = LeaseNumberSeries.objects.select_for_update().get(year=year)
    series.last_value += 1
    series.save(update_fields=["last_value"])
    return f"L-{year}-{series.last_value:04d}"


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
    term, notice and zone come from the listing. A delinquent tenant (standing computed by
    billing from its aging) is refused (`tenant_delinquent`).
    """
    now = _now(now)
    standing = Tenant.objects.values_list("standing", flat=True).get(pk=tenant.pk)
    if standing == TenantStanding.DELINQUENT:
        raise TenantDelinquent(extra={"tenant": tenant.slug})
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
        _insert_allocations(
            new_line.pk,
            node_ids,
            successor.commencement,
            successor.term_end,
            handed_over=True,  # the same nodes, already handed over under the predecessor
        )
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


@transaction.atomic
def lease_set_po_number(
    *, lease: Lease, po_number: str, actor: User | None = None, now: dt.datetime | None = None
) -> Lease:
    """Set the tenant's purchase order number of a lease (shown on its invoices and credit
    notes from then on), by `actor`: recorded in the lease's audit trail."""
    now = _now(now)
    po_number = (po_number or "").strip()
    if len(po_number) > 64:
        raise InvalidInput(extra={"fields": {"po_number": "At most 64 characters."}})
    locked = _lock_lease(lease)
    if locked.po_number == po_number:
        return locked
    before = locked.po_number
    locked.po_number = po_number
    locked.save(update_fields=["po_number", "updated_at"])
    _event(
        locked,
        EventKind.PO_NUMBER_SET,
        party=Party.OPERATOR,
        actor=actor,
        at=now,
        data={"from": before, "to": po_number},
    )
    return locked
