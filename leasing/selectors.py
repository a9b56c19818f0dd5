"""Reads of leasing state shared by the operator pages and commands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce

from clusters.models import Cluster, Node
from clusters.services import RUNNING_STATUSES

from .choices import HOLDING, SIGNED, UNRELEASED, UNSIGNED, LineStatus
from .models import Allocation, LeaseLine

# --- held capacity -------------------------------------------------------------------------------
#
# One rule says which nodes are held, for the allocator (`services.free_node_ids`, under the
# cluster lock), the operator dashboard, the capacity timeline, the admin capacity pages and the
# leased pools of the fleet scenario. Each is a `Q` over `Allocation`, so a caller filters,
# counts, annotates or correlates it (`OuterRef`) as its own query needs, and they cannot drift.


def held_past_end(*, now: dt.datetime) -> Q:
    """Allocations whose node stays held after the row's own end (`Q` over `Allocation`).

    The allocation rows stop at the lease's end, but the nodes stay with the tenant (draining,
    then holdover) until `lease_release_confirm` sets `released_at`. That covers a lease the
    boundary job has ended (TERMINATED, EXPIRED, HOLDOVER) and a lease still signed whose end is
    already past at `now` (the job has not run yet): it is ended all the same. Only rows that ran
    to the lease's end count: a line ended earlier by a notice gave its nodes back then. A lease
    handed to its renewal has `released_at` set at its term end, so only the renewal's own rows
    hold those nodes afterwards.
    """
    ended = Q(line__lease__status__in=UNRELEASED) | Q(
        line__lease__status__in=SIGNED, ends_at__lte=now
    )
    return ended & Q(
        line__lease__released_at__isnull=True,
        ends_at__gte=Coalesce("line__lease__effective_end", "line__lease__term_end"),
    )


def _held(starts: Q, start: dt.datetime, now: dt.datetime) -> Q:
    # Any row running at `start` holds its node, whatever its lease's status: cancellation
    # deletes rows and notices shorten them, and the exclusion constraint counts every row.
    return starts & (Q(ends_at__gt=start) | held_past_end(now=now))


def held_during(start: dt.datetime, end: dt.datetime | None, *, now: dt.datetime) -> Q:
    """Allocations holding their node at some instant of `[start, end)` (`end=None`: from
    `start` on), as known at `now`. The allocator's question: a node with such a row is not
    free over the period."""
    return _held(Q() if end is None else Q(starts_at__lt=end), start, now)


def held_at(at: dt.datetime, *, now: dt.datetime, through: dt.datetime | None = None) -> Q:
    """Allocations holding their node at the instant `at` (or at some instant of the closed
    range `[at, through]`), as known at `now`. The operator pages' question."""
    return _held(Q(starts_at__lte=through or at), at, now)


def held_node_ids(*, now: dt.datetime, at: dt.datetime | None = None) -> QuerySet[Allocation, Any]:
    """Ids of the nodes held at `at` (default `now`), as a subquery (`node_id` values). A node
    can appear twice: a holdover keeps it past its lease's end, where a later lease's rows may
    already begin (allocated before the overrun was known)."""
    return Allocation.objects.filter(held_at(at or now, now=now)).values("node_id")


def lines_running_at(now: dt.datetime) -> QuerySet[LeaseLine]:
    """Lease lines accruing rent at `now`: commenced, and before the line's end (the earliest of
    its own effective end, the lease's and the term end: `LeaseLine.end`). The monthly run-rate
    is the sum of their rates; holdover is not rent and is not in it."""
    return LeaseLine.objects.exclude(lease__status__in=UNSIGNED).filter(
        Q(lease__commencement__lte=now),
        Q(lease__term_end__gt=now),
        Q(effective_end__isnull=True) | Q(effective_end__gt=now),
        Q(lease__effective_end__isnull=True) | Q(lease__effective_end__gt=now),
    )


def leased_gpus_by_cluster(
    clusters: Iterable[Cluster], *, now: dt.datetime
) -> tuple[dict[int, int], Decimal]:
    """Running GPUs under lease per cluster id, and the monthly rent of the open lease lines.

    GPUs under lease are those of the running (active, degraded) nodes held at `now` or later:
    held now by the shared rule (`held_during`, holdover and draining included) or reserved for
    a lease that starts later. The rest of a cluster's running GPUs are the operator's own.
    Holdover is not rent: the rent is that of the open lines of leases that hold capacity. Two
    queries.
    """
    per_node = {c.pk: c.gpus_per_node for c in clusters}
    held = Allocation.objects.filter(held_during(now, None, now=now)).values("node_id")
    counts = (
        Node.objects.filter(cluster__in=list(per_node), status__in=RUNNING_STATUSES, pk__in=held)
        .order_by()
        .values("cluster")
        .annotate(nodes=Count("pk"))
    )
    gpus = {row["cluster"]: row["nodes"] * per_node[row["cluster"]] for row in counts}
    rents = LeaseLine.objects.filter(
        cluster__in=list(per_node), lease__status__in=HOLDING, status=LineStatus.OPEN
    ).values_list("monthly_rate", flat=True)
    # Summed in Python: SQLite would sum decimals as floats.
    return gpus, sum(rents, Decimal(0))
