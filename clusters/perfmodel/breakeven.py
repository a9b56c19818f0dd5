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

Break-evens as intervals (:func:`flips`): the recommendation need not be monotone in an input
(a faster link can make a multi-site placement best and its value can still fall short of the
rent at some bandwidths), so every flip in the searched range is reported, each with the
recommendation it flips to. A 128-point log grid finds every grid cell where the
recommendation changes; all cells are refined together by two 32-point grids (bracket ratio
≈ 1 + 2e-5 over [1, 10⁶]). Flips closer together than one grid cell can be missed; the grid is
stated with the result. Three searches:

- every link at the same bandwidth (``link_bandwidth_flips``);
- per link: only that link's bandwidth varies, the others as given — which link's upgrade
  flips the decision, and at what bandwidth (``per_link``);
- per generation: the peak speed of every pool of one accelerator model is multiplied by a
  factor in [0.1, 10] — which generation's speed flips the decision (``per_generation``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


FLIP_GRID = 128
FLIP_REFINE = 32
GENERATION_FACTORS = (0.1, 10.0)


@dataclass(frozen=True)
class Flip:
    """The recommendation changes at ``at`` (in the searched input's unit) to ``to``."""

    at: float
    to: str


def flips(
    reclaim_at: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.bool_]],
    low: float,
    high: float,
) -> tuple[Flip, ...]:
    """Every flip of ``reclaim_at`` (values → bool per value, one vectorized batch) over the
    geometric range [low, high] (module docstring)."""
    grid = np.geomspace(low, high, FLIP_GRID)
    rec = reclaim_at(grid)
    cells = np.nonzero(rec[1:] != rec[:-1])[0]
    if cells.size == 0:
        return ()
    lo, hi = grid[cells], grid[cells + 1]
    for _ in range(2):
        sub = np.exp(np.linspace(np.log(lo), np.log(hi), FLIP_REFINE, axis=-1))  # (F, R)
        sub_rec = reclaim_at(sub.ravel()).reshape(sub.shape)
        start = rec[cells][:, None]
        # First point in each cell that differs from the cell's start (the end always does).
        first = np.argmax(sub_rec != start, axis=-1)
        first = np.where(first == 0, 1, first)
        rows = np.arange(sub.shape[0])
        lo, hi = sub[rows, first - 1], sub[rows, first]
    return tuple(
        Flip(at=float(h), to="reclaim" if bool(r) else "keep_leased")
        for h, r in zip(hi, ~rec[cells], strict=True)
    )


def link_bandwidth_flips(scenario: Scenario, placements: list[Placement]) -> tuple[Flip, ...]:
    """Every flip with all links at the same bandwidth (Gbit/s) in [1 Gbit/s, 1 Pbit/s]."""
    if not scenario.links or scenario.economics.horizon_days <= 0.0:
        return ()
    return flips(lambda v: _reclaim_at(scenario, placements, v), *LINK_SEARCH_GBPS)


def per_link_flips(
    scenario: Scenario, placements: list[Placement]
) -> tuple[tuple[int, tuple[Flip, ...]], ...]:
    """For each link (index), every flip as only that link's bandwidth varies (Gbit/s)."""
    if not scenario.links or scenario.economics.horizon_days <= 0.0:
        return ()
    given = np.array([lk.bandwidth_gbps for lk in scenario.links], dtype=np.float64)
    out = []
    for i in range(len(scenario.links)):

        def reclaim(values: npt.NDArray[np.float64], i: int = i) -> npt.NDArray[np.bool_]:
            bw = np.repeat(given[None, :], values.size, axis=0)
            bw[:, i] = values
            _, val = evaluate_and_value(scenario, placements, bandwidth_gbps=bw[:, None, :])
            return val.reclaim

        out.append((i, flips(reclaim, *LINK_SEARCH_GBPS)))
    return tuple(out)


def per_generation_flips(
    scenario: Scenario, placements: list[Placement]
) -> tuple[tuple[str, tuple[Flip, ...]], ...]:
    """For each accelerator model in the pools, every flip as its pools' peak speed is scaled
    by a factor in [0.1, 10] (the factor is the reported value)."""
    if scenario.economics.horizon_days <= 0.0:
        return ()
    peaks = np.array(
        [scenario.accelerators[p.accelerator].peak_tflops for p in scenario.pools], dtype=float
    )
    out = []
    for model in dict.fromkeys(p.accelerator for p in scenario.pools):
        which = np.array([p.accelerator == model for p in scenario.pools])

        def reclaim(
            values: npt.NDArray[np.float64], which: npt.NDArray[np.bool_] = which
        ) -> npt.NDArray[np.bool_]:
            peak = np.where(which[None, :], peaks[None, :] * values[:, None], peaks[None, :])
            _, val = evaluate_and_value(scenario, placements, peak_tflops=peak[:, None, :])
            return val.reclaim

        out.append((model, flips(reclaim, *GENERATION_FACTORS)))
    return tuple(out)
