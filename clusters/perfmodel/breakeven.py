"""Break-evens: the input values at which the recommendation flips (docs/model.md, "Value,
placements and break-evens").

- Scarcity multiplier: value is linear in it, so ``s* = rent / (value at s = 1)``; reclaim iff
  s > s*. None when the capacity adds no value or the horizon is empty.
- Rent per month: ``rent* = value / (12 · horizon_days / 365)``; reclaim iff rent < rent*.
  None when the horizon is empty.
- Link bandwidth: every inter-site link set to the same bandwidth X (Gbit/s, other link
  properties unchanged). The recommendation is evaluated on a log grid over [1 Gbit/s,
  1 Pbit/s] in one vectorized batch (grid × placements); the first grid cell where it differs
  from its value at 1 Gbit/s is refined by two more grids inside that cell (bracket ratio
  ≈ 1 + 6e-5). X* is the first bandwidth at which the recommendation differs from the
  low-bandwidth one. None if it never flips in the range, or there is no link.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .placement import Placement
from .scenario import Scenario
from .terms import DAYS_PER_YEAR
from .valuation import evaluate_and_value

LINK_SEARCH_GBPS = (1.0, 1e6)
_GRID = 64
_ROUNDS = 3


def scarcity_break_even(
    internal_value_usd: float, scarcity_multiplier: float, rent_usd: float, horizon_days: float
) -> float | None:
    """Scarcity multiplier at which value = rent (value is linear in it); None if none exists."""
    if horizon_days <= 0.0 or scarcity_multiplier <= 0.0:
        # With s = 0 the value per unit of scarcity cannot be recovered from the value.
        return None
    per_unit = internal_value_usd / scarcity_multiplier
    if per_unit <= 0.0:
        return None
    return rent_usd / per_unit


def rent_break_even(internal_value_usd: float, horizon_days: float) -> float | None:
    """Monthly rent (USD/month) at which rent over the horizon equals the value; None if the
    horizon is empty. Below it reclaiming wins (when the value is positive)."""
    if horizon_days <= 0.0:
        return None
    return max(internal_value_usd, 0.0) / (12.0 * horizon_days / DAYS_PER_YEAR)


def link_bandwidth_break_even(scenario: Scenario, placements: list[Placement]) -> float | None:
    """Uniform inter-site link bandwidth (Gbit/s) at which the recommendation flips.

    Monotone-bracket search over vectorized batches (module docstring). None when there are no
    links or no flip within [1 Gbit/s, 1 Pbit/s].
    """
    n_links = len(scenario.links)
    if n_links == 0 or scenario.economics.horizon_days <= 0.0:
        return None
    lo, hi = np.log(LINK_SEARCH_GBPS[0]), np.log(LINK_SEARCH_GBPS[1])
    reclaim_low: bool | None = None
    for _ in range(_ROUNDS):
        grid = np.exp(np.linspace(lo, hi, _GRID))
        reclaim = _reclaim_at(scenario, placements, grid)
        if reclaim_low is None:
            reclaim_low = bool(reclaim[0])
        flips = np.nonzero(reclaim != reclaim_low)[0]
        if flips.size == 0:
            return None
        i = int(flips[0])
        if i == 0:
            return float(grid[0])
        lo, hi = np.log(grid[i - 1]), np.log(grid[i])
    return float(np.exp(hi))


def _reclaim_at(
    scenario: Scenario, placements: list[Placement], bandwidth_gbps: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    bw = np.broadcast_to(
        bandwidth_gbps[:, None, None], (bandwidth_gbps.size, 1, len(scenario.links))
    )
    _, val = evaluate_and_value(scenario, placements, bandwidth_gbps=bw)
    return val.reclaim
