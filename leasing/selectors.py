"""Reads of leasing state shared by the operator pages and commands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from clusters.models import Cluster

from .choices import HOLDING, UNSIGNED, LineStatus
from .models import LeaseLine


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


def leased_gpus_by_cluster(clusters: Iterable[Cluster]) -> tuple[dict[int, int], Decimal]:
    """GPUs under lease per cluster id, and their monthly rent, from the open lease lines of
    leases that hold capacity. One query."""
    per_node = {c.pk: c.gpus_per_node for c in clusters}
    rows = (
        LeaseLine.objects.filter(
            cluster__in=list(per_node), lease__status__in=HOLDING, status=LineStatus.OPEN
        )
        .order_by()
        .values("cluster")
        .annotate(nodes=Sum("node_count"), rent=Sum("monthly_rate"))
    )
    gpus: dict[int, int] = {}
    rent = Decimal(0)
    for row in rows:
        gpus[row["cluster"]] = row["nodes"] * per_node[row["cluster"]]
        rent += row["rent"]
    return gpus, rent
