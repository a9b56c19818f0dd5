"""Reads of leasing state shared by the operator pages and commands."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Sum

from clusters.models import Cluster

from .choices import LeaseStatus, LineStatus
from .models import LeaseLine

# A tenant holds (or will hold) capacity in these lease states.
HOLDING = (
    LeaseStatus.SCHEDULED,
    LeaseStatus.ACTIVE,
    LeaseStatus.NOTICE_GIVEN,
    LeaseStatus.HOLDOVER,
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
