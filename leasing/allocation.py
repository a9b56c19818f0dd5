"""Node allocation: which nodes are free, and holding them for a lease line.

No overcommit (docs/rules/lease.md, "No overcommit"): a node is held by at most one allocation
at any instant. Allocation runs under the cluster lock (`_lock_clusters`, last in the lock order
of docs/architecture.md) and reads the free nodes after taking it, so two requests for the same
cluster are serialized and the second sees the first's rows. On PostgreSQL the exclusion
constraint of migration 0002 rejects any overlap that slips past (SQLSTATE 23P01 →
`capacity_unavailable`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef

from clusters.choices import IncidentStatus
from clusters.models import ALLOCATABLE_STATUSES, Cluster, Incident, Node

from .exceptions import CapacityUnavailable
from .models import Allocation, LeaseLine
from .selectors import held_during
from .transitions import _iso

EXCLUSION_VIOLATION = "23P01"
ALLOCATION_BATCH = 5_000


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

    Healthy: an allocatable status and no open incident (docs/rules/fleet.md, "Incidents": a
    node with an open incident is never allocated anew, whatever its status says — a tenant's
    report opens the incident before anyone looks at the machine).

    A node is free when no allocation holds it at any instant of the period, by the rule every
    capacity figure shares (`selectors.held_during`: overlapping rows, and the rows of an ended
    lease whose release is not confirmed, up to that release). `now` is required: the answer
    depends on it, and a caller on a simulated clock must never be judged by the real one.

    One set-based query (NOT EXISTS over the allocation index and the incident index); call it
    holding the cluster lock if the answer is going to be used to allocate.
    """
    busy = Allocation.objects.filter(node=OuterRef("pk")).filter(held_during(start, end, now=now))
    broken = Incident.objects.filter(node=OuterRef("pk"), status=IncidentStatus.OPEN)
    qs = (
        Node.objects.filter(cluster_id=cluster_id, status__in=ALLOCATABLE_STATUSES)
        .filter(~Exists(busy))
        .filter(~Exists(broken))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return list(qs if limit is None else qs[:limit])


def _insert_allocations(
    line_id: int,
    node_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    handed_over: bool = False,
) -> None:
    """Insert the allocations; `handed_over` marks them accepted at their start: not a new
    delivery (a renewal on the same nodes, a line revived by a withdrawn notice), so rent
    follows them from the start (docs/rules/fleet.md, "Rent follows accepted nodes")."""
    accepted_at = start if handed_over else None
    try:
        Allocation.objects.bulk_create(
            (
                Allocation(
                    line_id=line_id,
                    node_id=n,
                    starts_at=start,
                    ends_at=end,
                    accepted_at=accepted_at,
                )
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
    line: LeaseLine,
    start: dt.datetime,
    end: dt.datetime,
    *,
    now: dt.datetime,
    handed_over: bool = False,
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
    _insert_allocations(line.pk, node_ids, start, end, handed_over=handed_over)
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
        # A line revived by a withdrawn notice: the contract's nodes again, not a new delivery.
        _allocate_line(line, start, end, now=now, handed_over=True)
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
