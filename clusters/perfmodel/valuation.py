"""Reclaim or keep leased: the value of the capacity in its best internal use against the rent.

docs/model.md, "Value, placements and break-evens". Each placement's value is computed by the
model (useful FLOP/s × horizon × reference $/useful FLOP × scarcity). The capacity in question is
worth:

- if no pool is marked ``leased``: the value of the best placement (all capacity is in
  question, the operator would use it in its best way);
- if some pools are ``leased``: what reclaiming them adds for the workload, the larger of
  (a) the best placement that uses only leased pools (the workload runs on the reclaimed
  capacity alone; the operator's own capacity keeps its current work) and (b) the best
  placement overall minus the best placement that uses no leased pool (the reclaimed capacity
  joins the operator's own in one job). Concurrent independent jobs are not summed: the model
  values capacity for the one workload it is given.

Both are linear in the scarcity multiplier. ``reclaim`` iff net = value − rent > 0 and the
horizon is not empty (an empty window never recommends reclaim).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from .model import Outputs, evaluate, topology_of
from .placement import Placement, placement_inputs, uses_leased
from .scenario import Scenario

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Valuation:
    """Valuation over a batch whose last axis is the placement (arrays of the leading shape).

    best_index: the placement with the highest useful throughput. best_value_usd: its value.
    baseline_value_usd: best value without leased pools (0 when nothing is leased).
    internal_value_usd: the value the capacity in question adds (module docstring). USD.
    """

    best_index: npt.NDArray[np.int64]
    best_value_usd: FloatArray
    baseline_value_usd: FloatArray
    internal_value_usd: FloatArray
    rent_usd: FloatArray
    net_usd: FloatArray
    reclaim: BoolArray
    horizon_days: FloatArray


def value_placements(
    out: Outputs, leased: BoolArray, only_leased: BoolArray, horizon_days: FloatArray
) -> Valuation:
    """Reduce per-placement outputs (last axis = placement) to the reclaim valuation.

    ``leased``: placements that use any leased pool; ``only_leased``: placements that use
    leased pools only (module docstring gives the rule).
    """
    values = out.internal_value_usd
    best_index = np.argmax(out.useful_flops_per_s, axis=-1)
    best = np.take_along_axis(values, best_index[..., None], axis=-1)[..., 0]
    if leased.any():
        baseline = np.where(~leased, values, 0.0).max(axis=-1, initial=0.0)
        alone = np.where(only_leased, values, 0.0).max(axis=-1, initial=0.0)
        internal = np.maximum(best - baseline, alone)
    else:
        baseline = np.zeros_like(best)
        internal = best
    rent = out.rent_usd[..., 0]
    net = internal - rent
    horizon = np.asarray(np.broadcast_to(horizon_days, net.shape), dtype=np.float64)
    return Valuation(
        best_index=np.asarray(best_index, dtype=np.int64),
        best_value_usd=best,
        baseline_value_usd=baseline,
        internal_value_usd=internal,
        rent_usd=rent,
        net_usd=net,
        reclaim=(net > 0.0) & (horizon > 0.0),
        horizon_days=horizon,
    )


def leased_mask(scenario: Scenario, placements: list[Placement]) -> BoolArray:
    """Which placements use a leased pool."""
    return np.array([uses_leased(scenario, c) for c in placements], dtype=bool)


def only_leased_mask(scenario: Scenario, placements: list[Placement]) -> BoolArray:
    """Which placements use leased pools only."""
    return np.array(
        [bool(c.pools) and all(scenario.pools[i].leased for i in c.pools) for c in placements],
        dtype=bool,
    )


def evaluate_and_value(
    scenario: Scenario, placements: list[Placement], **overrides: npt.ArrayLike
) -> tuple[Outputs, Valuation]:
    """Evaluate every placement (optionally over a leading sweep axis) and value the batch.

    ``overrides`` replace input arrays; give them a shape that broadcasts against
    ``(V, n_placements)`` for scalars or ``(V, n_placements, P or L)`` for pool/link fields,
    e.g. ``scarcity_multiplier=values[:, None]``.

    With a portfolio (SCHEMA.md, "portfolio") every workload is evaluated with the same
    placements and overrides; the capacity's internal value is the share-weighted sum of each
    workload's valuation (each in its own best placement). The outputs returned and the best
    placement are the scenario's own workload's.
    """
    outputs, valuation = _evaluate_and_value_one(scenario, placements, overrides)
    if not scenario.portfolio:
        return outputs, valuation
    internal = np.zeros_like(valuation.internal_value_usd)
    for entry in scenario.portfolio:
        _, val = _evaluate_and_value_one(
            scenario.with_workload(entry.workload), placements, overrides
        )
        internal = internal + entry.share * val.internal_value_usd
    net = internal - valuation.rent_usd
    return outputs, replace(
        valuation,
        internal_value_usd=internal,
        net_usd=net,
        reclaim=(net > 0.0) & (valuation.horizon_days > 0.0),
    )


def _evaluate_and_value_one(
    scenario: Scenario, placements: list[Placement], overrides: dict[str, npt.ArrayLike]
) -> tuple[Outputs, Valuation]:
    x = placement_inputs(scenario, placements)
    if overrides:
        x = x.replace(**overrides)
    out = evaluate(topology_of(scenario), x)
    horizon = np.broadcast_to(x.horizon_days, out.step_time_s.shape)[..., 0]
    return out, value_placements(
        out, leased_mask(scenario, placements), only_leased_mask(scenario, placements), horizon
    )
