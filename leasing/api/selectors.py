"""Reads of the tenant API: tenant-scoped querysets, available actions, termination quotes.

Every queryset here starts from the calling tenant, so another tenant's id matches nothing and
the view answers 404. List querysets carry what the serializers read (select_related,
annotations, prefetches), so a page costs the same number of queries whatever its size.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from common.contract_time import local_midnight
from leasing.choices import (  # SIGNED: the tenant may give notice and quotes
    SIGNED,
    LeaseStatus,
    ListingStatus,
    ListingVisibility,
    NoticeOutcome,
    NoticeStatus,
    Party,
)
from leasing.models import Allocation, Lease, LeaseLine, Listing, Notice, Tenant


class LeaseAction:
    GIVE_NOTICE = "give_notice"
    TERMINATION_QUOTE = "termination_quote"
    CONFIRM_NOTICE_WITHDRAWAL = "confirm_notice_withdrawal"

    ALL = (GIVE_NOTICE, TERMINATION_QUOTE, CONFIRM_NOTICE_WITHDRAWAL)


class NoticeAction:
    CONFIRM_WITHDRAWAL = "confirm_withdrawal"

    ALL = (CONFIRM_WITHDRAWAL,)


# --- listings -----------------------------------------------------------------------------------


def listing_list_for_tenant(tenant: Tenant) -> QuerySet[Listing]:
    """Published listings the tenant may see: public ones and those private to it."""
    return (
        Listing.objects.filter(status=ListingStatus.PUBLISHED)
        .filter(Q(visibility=ListingVisibility.PUBLIC) | Q(private_tenant=tenant))
        .select_related("cluster__site", "cluster__accelerator")
    )


# --- leases and notices -------------------------------------------------------------------------


def _pending_operator_withdrawal() -> Q:
    return Q(
        status=NoticeStatus.RECORDED,
        withdrawal_requested_by=Party.OPERATOR,
        withdrawn_at__isnull=True,
    )


def _line_total(column: str) -> Subquery:
    """The sum of `column` over the lease's lines, as a correlated subquery: evaluated for the
    rows a page returns only, where a join and GROUP BY would aggregate every lease the tenant
    has before the page is cut."""
    return Subquery(
        LeaseLine.objects.filter(lease=OuterRef("pk"))
        .order_by()
        .values("lease")
        .annotate(total=Sum(column))
        .values("total")
    )


def lease_list_for_tenant(tenant: Tenant) -> QuerySet[Lease]:
    """The tenant's leases with line totals and whether a withdrawal awaits its consent."""
    now = timezone.now()
    pending = Notice.objects.filter(
        _pending_operator_withdrawal(), lease=OuterRef("pk"), effective_end__gt=now
    )
    return Lease.objects.filter(tenant=tenant).annotate(
        api_node_count=_line_total("node_count"),
        api_monthly_rate=_line_total("monthly_rate"),
        api_pending_withdrawal=Exists(pending),
    )


# What a page of the lease list reads: the columns `LeaseListSerializer` renders, and those the
# ordering filter may sort by (the cursor reads its position from the row).
LEASE_ROW_COLUMNS = (
    "id",
    "number",
    "status",
    "listing_id",
    "currency",
    "contract_timezone",
    "commencement_date",
    "commencement",
    "term_end",
    "effective_end",
    "api_node_count",
    "api_monthly_rate",
    "api_pending_withdrawal",
    "created_at",
)


def lease_rows_for_tenant(tenant: Tenant) -> QuerySet:
    """The lease list as rows (dicts) of `LEASE_ROW_COLUMNS`: a page is one query over the
    (tenant, id) index, with no model instances built and no column the page does not show."""
    return lease_list_for_tenant(tenant).values(*LEASE_ROW_COLUMNS)


def lease_detail_for_tenant(tenant: Tenant) -> QuerySet[Lease]:
    return lease_list_for_tenant(tenant).prefetch_related(
        Prefetch("lines", queryset=LeaseLine.objects.select_related("cluster__site")),
        Prefetch("notices", queryset=_with_renewal(Notice.objects.prefetch_related("lines"))),
    )


def notice_list_for_lease(lease: Lease) -> QuerySet[Notice]:
    return _with_renewal(
        Notice.objects.filter(lease=lease).prefetch_related(
            Prefetch("lines", queryset=LeaseLine.objects.only("id"))
        )
    )


def _with_renewal(notices: QuerySet[Notice]) -> QuerySet[Notice]:
    """Each notice with `api_renewal`: the id of the lease's renewal if it commences after the
    notice's effective end (in the same query: a correlated subquery over the one-to-one
    predecessor column). A whole-lease notice that binds then cancels that renewal."""
    renewal = (
        Lease.objects.filter(
            predecessor=OuterRef("lease_id"), commencement__gt=OuterRef("effective_end")
        )
        .exclude(status=LeaseStatus.VOID)
        .values("pk")[:1]
    )
    return notices.annotate(api_renewal=Subquery(renewal))


def notice_cancels_renewal(notice: Notice) -> int | None:
    """The renewal (lease id) a notice cancels: its lease's renewal commences after the
    notice's effective end, and the notice binds the whole lease (recorded or effective, not
    moot, no lines). Reads `api_renewal` (`_with_renewal`) and the prefetched lines."""
    renewal = getattr(notice, "api_renewal", None)
    if (
        renewal is None
        or notice.status not in (NoticeStatus.RECORDED, NoticeStatus.EFFECTIVE)
        or notice.outcome == NoticeOutcome.MOOT
        or notice.lines.all()
    ):
        return None
    return renewal


def allocation_summary(lease: Lease) -> list[dict]:
    """Nodes held per cluster over the lease (one grouped query)."""
    rows = (
        Allocation.objects.filter(line__lease=lease)
        .values(
            "line__cluster_id",
            "line__cluster__slug",
            "line__cluster__name",
            "line__cluster__site__slug",
        )
        .annotate(nodes=Count("node_id", distinct=True))
        .order_by("line__cluster_id")
    )
    return [
        {
            "cluster": {
                "id": r["line__cluster_id"],
                "slug": r["line__cluster__slug"],
                "name": r["line__cluster__name"],
            },
            "site": r["line__cluster__site__slug"],
            "nodes": r["nodes"],
        }
        for r in rows
    ]


def lease_available_actions(lease: Lease, *, now: dt.datetime) -> list[str]:
    """What the tenant may do next with this lease (mirrors the services' guards)."""
    return lease_actions(
        status=lease.status,
        end=lease.end,
        pending_withdrawal=getattr(lease, "api_pending_withdrawal", False),
        now=now,
    )


def lease_actions(
    *, status: str, end: dt.datetime, pending_withdrawal: bool, now: dt.datetime
) -> list[str]:
    """`lease_available_actions` from the columns it reads (for list rows)."""
    actions: list[str] = []
    if status in SIGNED and end > now:
        actions += [LeaseAction.GIVE_NOTICE, LeaseAction.TERMINATION_QUOTE]
    if pending_withdrawal:
        actions.append(LeaseAction.CONFIRM_NOTICE_WITHDRAWAL)
    return actions


def notice_available_actions(notice: Notice, *, now: dt.datetime) -> list[str]:
    """The tenant may confirm the operator's request to withdraw its notice."""
    if (
        notice.status == NoticeStatus.RECORDED
        and notice.effective_end > now
        and notice.withdrawal_requested_by == Party.OPERATOR
    ):
        return [NoticeAction.CONFIRM_WITHDRAWAL]
    return []


# --- requested ends --------------------------------------------------------------------------


def requested_end_instant(lease: Lease, requested_end_date: dt.date | None) -> dt.datetime | None:
    """A requested end date means the local midnight starting that day (the lease's zone)."""
    if requested_end_date is None:
        return None
    return local_midnight(requested_end_date, lease.contract_timezone)
