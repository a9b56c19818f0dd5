"""Guarded inventory (docs/rules/fleet.md, "Guarded inventory"): which nodes leases hold.

A node held by a signed lease cannot change cluster or be deleted, and its status moves only
through an incident or a maintenance window. Who holds a node is leasing's knowledge, and
`clusters` may not import `leasing` (docs/architecture.md, "Apps and layering"). So leasing
registers a provider here when its app is ready (`leasing.apps.LeasingConfig.ready` →
`leasing.maintenance.node_holdings`), and the inventory's admin asks through `holdings()`.

Without a provider (leasing not installed) no node is held.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Holding:
    """One node held by one lease line (a node can be held by two leases in succession)."""

    node_id: int
    hostname: str
    lease_id: int
    lease_number: str
    lease_status: str
    tenant: str
    line_id: int
    line_monthly_rate: Decimal
    line_node_count: int
    currency: str


# `provider(node_ids, now)`: the holdings, at `now` or later, of those nodes (`node_ids` may be
# a queryset of ids, used as a subquery).
HoldingsProvider = Callable[[Any, dt.datetime], list[Holding]]

_provider: HoldingsProvider | None = None


def register_holdings_provider(provider: HoldingsProvider) -> None:
    """Called once by the app that knows holdings (leasing), in its `ready()`."""
    global _provider
    _provider = provider


def holdings(node_ids: Iterable[int] | Any, *, now: dt.datetime) -> list[Holding]:
    """Who holds these nodes now or later (held-capacity rule of leasing)."""
    if _provider is None:
        return []
    return _provider(node_ids, now)


def held_node_ids(node_ids: Iterable[int] | Any, *, now: dt.datetime) -> set[int]:
    return {h.node_id for h in holdings(node_ids, now=now)}


@dataclass
class LeaseImpact:
    """What a change to some nodes touches of one lease: for confirmation pages."""

    lease_id: int
    lease_number: str
    tenant: str
    currency: str
    nodes: set[int]
    lines: dict[int, tuple[Decimal, int]]  # line id → (monthly rate, node count)

    @property
    def monthly_rent(self) -> Decimal:
        """Monthly rent of the lease lines the change touches."""
        return sum((rate for rate, _ in self.lines.values()), Decimal(0))


def impact(items: list[Holding]) -> list[LeaseImpact]:
    """Holdings grouped by lease, largest rent first."""
    leases: dict[int, LeaseImpact] = {}
    for h in items:
        row = leases.setdefault(
            h.lease_id,
            LeaseImpact(h.lease_id, h.lease_number, h.tenant, h.currency, set(), {}),
        )
        row.nodes.add(h.node_id)
        row.lines[h.line_id] = (h.line_monthly_rate, h.line_node_count)
    return sorted(leases.values(), key=lambda r: (-r.monthly_rent, r.lease_number))
