"""Factories for billing tests: leases with lines in one call, and run helpers."""

import datetime as dt
from decimal import Decimal

from common.contract_time import local_midnight

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
    (notices fit allocations to the new end).
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
    return lease, lines


def local(day: dt.date, tz: str = "UTC") -> dt.datetime:
    """Local midnight of `day` in `tz` (lease boundaries)."""
    return local_midnight(day, tz)
