"""Factories for billing tests: leases with lines in one call, and run helpers."""

import datetime as dt
from decimal import Decimal

from common.contract_time import local_midnight
from leasing.models import Allocation

from .clusters import cluster_with_nodes
from .leasing import LeaseFactory, LeaseLineFactory

RATE = Decimal("1250000000.00")


def lease_with_lines(
    *,
    commencement_date: dt.date = dt.date(2026, 1, 1),
    tz: str = "UTC",
    rates: tuple[Decimal, ...] = (RATE,),
    term_days: int = 180,
    with_nodes: bool = False,
    **lease_fields,
):
    """A lease (ACTIVE by default) with one line per rate; returns (lease, [lines]).

    `with_nodes` gives each line a cluster with enough free nodes for leasing's services
    (notices fit allocations to the new end), allocated to the line over its life and
    accepted at commencement: rent follows accepted nodes (docs/rules/fleet.md), and these
    leases are about rent, not hand-over, so their nodes are explicitly handed over on time.
    """
    lease = LeaseFactory(
        commencement_date=commencement_date,
        contract_timezone=tz,
        term_days=term_days,
        **lease_fields,
    )
    lines = []
    for rate in rates:
        extra = {"cluster": cluster_with_nodes(10)} if with_nodes else {}
        lines.append(LeaseLineFactory(lease=lease, monthly_rate=rate, node_count=10, **extra))
    if with_nodes:
        accept_at_commencement(lease, lines)
    return lease, lines


def accept_at_commencement(lease, lines) -> None:
    """Allocate each line's nodes over its life, accepted at the lease's commencement."""
    Allocation.objects.bulk_create(
        Allocation(
            line=line,
            node=node,
            starts_at=lease.commencement,
            ends_at=line.end,
            accepted_at=lease.commencement,
        )
        for line in lines
        if line.end > lease.commencement
        for node in line.cluster.nodes.order_by("pk")[: line.node_count]
    )


def local(day: dt.date, tz: str = "UTC") -> dt.datetime:
    """Local midnight of `day` in `tz` (lease boundaries)."""
    return local_midnight(day, tz)
