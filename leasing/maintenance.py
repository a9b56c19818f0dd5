"""Maintenance windows as tenants live them: who a window touches, and deferral requests
(docs/rules/fleet.md, "Maintenance windows").

The windows themselves are the inventory's (`clusters/fleet.py`: create, change, cancel, the
status job). Here: which tenants hold a window's nodes during it (held-capacity rule,
`leasing/selectors.py`), the windows a tenant sees, a tenant's request to postpone a window,
the operator's decision, and the holdings provider behind the guarded inventory
(`clusters/guards.py`, registered in `leasing.apps`).

Lock order: the window row, then the deferral row (docs/architecture.md, "Lock order").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from clusters import fleet
from clusters.choices import MaintenanceStatus
from clusters.guards import Holding
from clusters.models import MaintenanceWindow, Node
from common.clock import resolve_now
from common.db import lock_row
from common.exceptions import Conflict, InvalidInput, NotFound

from .choices import DeferralStatus
from .models import Allocation, MaintenanceDeferral, Tenant
from .selectors import held_during

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class InvalidDeferral(InvalidInput):
    """Bad input naming its field (`extra.field`, and `extra.fields` as the API renders it)."""

    code = "invalid_deferral"
    default_message = "The deferral request is not valid."

    def __init__(self, message: str, *, field: str, **extra: Any):
        super().__init__(message, extra={"field": field, "fields": {field: [message]}, **extra})


class DeferralNotAllowed(Conflict):
    code = "deferral_not_allowed"
    default_message = "The window can no longer be deferred."


class DeferralAlreadyRequested(Conflict):
    code = "deferral_already_requested"
    default_message = "You already have an open deferral request for this window."


class DeferralDecided(Conflict):
    code = "deferral_decided"
    default_message = "The deferral request was already decided."


# --- who a window touches -----------------------------------------------------------------------


def _touches_window(prefix: str = "") -> Q:
    """Allocations whose node is in the scope of the outer window (`OuterRef` to it)."""
    return (
        Q(**{f"{prefix}node__maintenance_windows": OuterRef("pk")})
        | Q(**{f"{prefix}node__cluster_id": OuterRef("cluster_id")})
        | Q(**{f"{prefix}node__cluster__site_id": OuterRef("site_id")})
    )


def _held_during_window(now: dt.datetime) -> Q:
    """Allocations holding their node at some instant of the outer window's `[starts_at,
    ends_at)` (the held-capacity rule, with the window's own bounds)."""
    # The rule takes instants; outer references resolve to the window's, row by row.
    return held_during(OuterRef("starts_at"), OuterRef("ends_at"), now=now)  # type: ignore[arg-type]


def window_holdings(window: MaintenanceWindow, *, now: dt.datetime) -> QuerySet[Allocation]:
    """Allocations holding one of the window's nodes during the window."""
    return Allocation.objects.filter(
        held_during(window.starts_at, window.ends_at, now=now),
        node__in=fleet.window_nodes(window).values("pk"),
    )


def window_tenants(window: MaintenanceWindow, *, now: dt.datetime) -> QuerySet[Tenant]:
    """Tenants holding any of the window's nodes during `[starts_at, ends_at)`: those told."""
    return Tenant.objects.filter(
        pk__in=window_holdings(window, now=now).values("line__lease__tenant_id")
    )


def windows_for_tenant(tenant: Tenant, *, now: dt.datetime) -> QuerySet[MaintenanceWindow]:
    """Windows touching the tenant's nodes, each annotated with `affected_nodes` (how many of
    the tenant's nodes it takes) and `open_deferral` (1 when the tenant's request is open).
    Any other window does not exist for the tenant (404)."""
    mine = Allocation.objects.filter(
        _held_during_window(now), _touches_window(), line__lease__tenant=tenant
    )
    count = (
        mine.order_by()
        .values("line__lease__tenant_id")
        .annotate(n=Count("node_id", distinct=True))
        .values("n")
    )
    return (
        MaintenanceWindow.objects.filter(Exists(mine))
        .annotate(affected_nodes=Coalesce(Subquery(count, output_field=IntegerField()), 0))
        .select_related("site", "cluster__site")
    )


def node_holdings(node_ids: Iterable[int] | Any, now: dt.datetime) -> list[Holding]:
    """The holdings provider of the guarded inventory (`clusters.guards`): the allocations
    holding these nodes at `now` or later (held-capacity rule: signed leases from their
    commencement, holdover and draining until the release is confirmed)."""
    ids = node_ids if isinstance(node_ids, QuerySet) else list(node_ids)
    rows = (
        Allocation.objects.filter(held_during(now, None, now=now), node_id__in=ids)
        .order_by("node_id", "starts_at")
        .values_list(
            "node_id",
            "node__hostname",
            "line__lease_id",
            "line__lease__number",
            "line__lease__status",
            "line__lease__tenant__name",
            "line_id",
            "line__monthly_rate",
            "line__node_count",
            "line__lease__currency",
        )
    )
    return [Holding(*row) for row in rows]


# --- deferrals ----------------------------------------------------------------------------------


@transaction.atomic
def deferral_request(
    *,
    window: MaintenanceWindow,
    tenant: Tenant,
    requested_start: dt.datetime,
    reason: str = "",
    now: dt.datetime | None = None,
    actor: User | None = None,
) -> MaintenanceDeferral:
    """A tenant asks for a window touching its nodes to start later.

    Refused: a window that does not touch the tenant's nodes (`not_found`, as the API says), a
    naive instant or one not later than the current start (`invalid_deferral`, field
    `requested_start`), a window no longer scheduled (`deferral_not_allowed`), a second open
    request of the same tenant (`deferral_already_requested`).
    """
    now = resolve_now(now)
    if not isinstance(requested_start, dt.datetime) or requested_start.tzinfo is None:
        raise InvalidDeferral(
            "requested_start must be a timezone-aware instant", field="requested_start"
        )
    locked = lock_row(MaintenanceWindow, window.pk)
    if not windows_for_tenant(tenant, now=now).filter(pk=locked.pk).exists():
        raise NotFound(extra={"window": locked.pk})
    if locked.status != MaintenanceStatus.SCHEDULED:
        raise DeferralNotAllowed(extra={"window": locked.pk, "status": locked.status})
    if requested_start <= locked.starts_at:
        raise InvalidDeferral(
            "A deferral asks for a start later than the current one.",
            field="requested_start",
            starts_at=locked.starts_at.isoformat(),
        )
    if MaintenanceDeferral.objects.filter(
        window=locked, tenant=tenant, status=DeferralStatus.REQUESTED
    ).exists():
        raise DeferralAlreadyRequested(extra={"window": locked.pk})
    try:
        with transaction.atomic():
            return MaintenanceDeferral.objects.create(
                window=locked,
                tenant=tenant,
                requested_at=now,
                requested_start=requested_start,
                reason=reason,
            )
    except IntegrityError:  # a concurrent request won the unique constraint
        raise DeferralAlreadyRequested(extra={"window": locked.pk}) from None


def _lock_open(deferral: MaintenanceDeferral) -> tuple[MaintenanceWindow, MaintenanceDeferral]:
    window = lock_row(MaintenanceWindow, deferral.window_id)
    locked = lock_row(MaintenanceDeferral, deferral.pk)
    if locked.status != DeferralStatus.REQUESTED:
        raise DeferralDecided(extra={"deferral": locked.pk, "status": locked.status})
    return window, locked


@transaction.atomic
def deferral_grant(
    *,
    deferral: MaintenanceDeferral,
    actor: User | None,
    now: dt.datetime | None = None,
    note: str = "",
) -> MaintenanceDeferral:
    """Grant a request: the window moves to the requested start, its end by the same shift
    (`maintenance.changed`); records who decided. A window already starting at or after the
    requested start stays put. Refused when decided already (`deferral_decided`) or when the
    window is no longer scheduled (`deferral_not_allowed`)."""
    now = resolve_now(now)
    window, locked = _lock_open(deferral)
    if window.status != MaintenanceStatus.SCHEDULED:
        raise DeferralNotAllowed(extra={"window": window.pk, "status": window.status})
    shift = locked.requested_start - window.starts_at
    if shift > dt.timedelta(0):
        fleet.window_change(
            window=window,
            now=now,
            actor=actor,
            starts_at=window.starts_at + shift,
            ends_at=window.ends_at + shift,
        )
    return _decide(locked, DeferralStatus.GRANTED, actor=actor, now=now, note=note)


@transaction.atomic
def deferral_deny(
    *, deferral: MaintenanceDeferral, actor: User | None, note: str, now: dt.datetime | None = None
) -> MaintenanceDeferral:
    """Deny a request, saying why (`note` required); records who decided."""
    now = resolve_now(now)
    if not note.strip():
        raise InvalidDeferral("Say why the request is denied.", field="decision_note")
    _, locked = _lock_open(deferral)
    return _decide(locked, DeferralStatus.DENIED, actor=actor, now=now, note=note)


def _decide(
    deferral: MaintenanceDeferral, status: str, *, actor: Any, now: dt.datetime, note: str
) -> MaintenanceDeferral:
    deferral.status = status
    deferral.decided_by = actor
    deferral.decided_at = now
    deferral.decision_note = note
    deferral.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return deferral


def open_deferrals() -> QuerySet[MaintenanceDeferral]:
    return MaintenanceDeferral.objects.filter(status=DeferralStatus.REQUESTED)


# --- demo ---------------------------------------------------------------------------------------

DEMO_PLANNED = "Firmware and driver roll-out, H200 hall B"
DEMO_EMERGENCY = "Emergency: coolant leak in GB200 hall row 4"


def seed_demo_maintenance(*, now: dt.datetime) -> dict[str, int]:
    """The demo's windows (called once by `seed_demo`): a planned one announced 3 days ago for
    10 days ahead (≥ 7 days: planned) on campus 1's H200 hall, with Northwind AI's request to
    defer it a week; and an emergency one in progress on a few GB200 racks of campus 2.
    Idempotent (keyed by title); returns rows created per kind."""
    from clusters.choices import MaintenanceCategory, MaintenanceKind, MaintenanceScope
    from clusters.models import Cluster

    created = {"maintenance windows": 0, "deferral requests": 0}
    with transaction.atomic():
        h200 = Cluster.objects.filter(slug="c1-h200").first()
        if h200 is not None and not MaintenanceWindow.objects.filter(title=DEMO_PLANNED).exists():
            start = (now + dt.timedelta(days=10)).replace(
                hour=14, minute=0, second=0, microsecond=0
            )
            planned = fleet.window_create(
                title=DEMO_PLANNED,
                scope=MaintenanceScope.CLUSTER,
                cluster=h200,
                category=MaintenanceCategory.FIRMWARE,
                kind=MaintenanceKind.PLANNED,
                announced_at=now - dt.timedelta(days=3),
                starts_at=start,
                ends_at=start + dt.timedelta(hours=8),
                description="GPU driver and NVSwitch firmware, one rack row at a time.",
                now=now,
            )
            created["maintenance windows"] += 1
            for tenant in window_tenants(planned, now=now).filter(slug="northwind-ai"):
                deferral_request(
                    window=planned,
                    tenant=tenant,
                    requested_start=start + dt.timedelta(days=7),
                    reason="A training run checkpoints on the 18th; please move it a week.",
                    now=now,
                )
                created["deferral requests"] += 1
        racks = list(Node.objects.filter(cluster__slug="c2-gb200").order_by("hostname")[:3])
        if racks and not MaintenanceWindow.objects.filter(title=DEMO_EMERGENCY).exists():
            fleet.window_create(
                title=DEMO_EMERGENCY,
                scope=MaintenanceScope.NODES,
                nodes=racks,
                category=MaintenanceCategory.COOLING,
                kind=MaintenanceKind.EMERGENCY,
                announced_at=now - dt.timedelta(hours=2),
                starts_at=now - dt.timedelta(hours=1),
                ends_at=now + dt.timedelta(hours=5),
                description="Racks drained and isolated while the manifold is replaced.",
                now=now,
            )
            created["maintenance windows"] += 1
    return created
