"""Sensitivity sweeps: one input varied over many values, every placement, one batch.

Fields (all placements see the same value):

- ``scarcity_multiplier``: the economics multiplier (dimensionless).
- ``link_bandwidth_gbps``: every inter-site link set to this bandwidth, Gbit/s.
- ``rent_per_month_usd``: rent of the leased capacity, USD/month.
- ``horizon_days``: the compared window, days.
- ``jitter_cv``: every accelerator's step-time jitter set to this value.
- ``mfu``: every accelerator's MFU set to this value (0–1].
- ``overlap_s``: the overlap window, s.
- ``diloco_inner_steps``: H.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .placement import candidate_placements
from .scenario import Scenario
from .valuation import evaluate_and_value

FloatArray = npt.NDArray[np.float64]

SWEEP_FIELDS = (
    "scarcity_multiplier",
    "link_bandwidth_gbps",
    "rent_per_month_usd",
    "horizon_days",
    "jitter_cv",
    "mfu",
    "overlap_s",
    "diloco_inner_steps",
)
_POOL_SWEEPS = {"jitter_cv", "mfu"}


@dataclass(frozen=True)
class SweepResult:
    """Arrays over the swept values.

    step_time_s, effective_pflops, efficiency: the scenario as given. best_effective_pflops and
    best_placement: the best placement at each value. internal_value_usd, rent_usd, net_usd:
    the valuation (USD). reclaim: the recommendation. break_even: the first swept value whose
    recommendation differs from the first value's, linearly interpolated on net (None if none).
    """

    field: str
    values: FloatArray
    step_time_s: FloatArray
    effective_pflops: FloatArray
    efficiency: FloatArray
    best_effective_pflops: FloatArray
    best_placement: tuple[str, ...]
    internal_value_usd: FloatArray
    rent_usd: FloatArray
    net_usd: FloatArray
    reclaim: npt.NDArray[np.bool_]
    break_even: float | None


def parse_spec(spec: str) -> tuple[str, FloatArray]:
    """Parse ``FIELD=START:STOP:N`` (linear) or ``FIELD=START:STOP:N:log`` (geometric)."""
    if "=" not in spec:
        raise ValueError(f"sweep spec {spec!r} must look like FIELD=START:STOP:N")
    name, _, rng = spec.partition("=")
    name = name.strip()
    if name not in SWEEP_FIELDS:
        raise ValueError(f"unknown sweep field {name!r}; one of {', '.join(SWEEP_FIELDS)}")
    parts = rng.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
        raise ValueError(f"sweep range {rng!r} must be START:STOP:N or START:STOP:N:log")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError as exc:
        raise ValueError(f"sweep range {rng!r}: {exc}") from None
    if count < 2:
        raise ValueError("a sweep needs at least 2 points")
    if len(parts) == 4:
        if start <= 0 or stop <= 0:
            raise ValueError("a log sweep needs positive bounds")
        return name, np.geomspace(start, stop, count)
    return name, np.linspace(start, stop, count)


def sweep(scenario: Scenario, field: str, values: npt.ArrayLike) -> SweepResult:
    """Evaluate the scenario with ``field`` set to each of ``values`` (see module docstring).

    One vectorized evaluation of (values × placements).
    """
    if field not in SWEEP_FIELDS:
        raise ValueError(f"unknown sweep field {field!r}; one of {', '.join(SWEEP_FIELDS)}")
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    placements = candidate_placements(scenario)
    n_pools, n_links = len(scenario.pools), len(scenario.links)
    if field == "link_bandwidth_gbps":
        override = np.broadcast_to(vals[:, None, None], (vals.size, 1, n_links))
        out, val = evaluate_and_value(scenario, placements, bandwidth_gbps=override)
    elif field in _POOL_SWEEPS:
        override = np.broadcast_to(vals[:, None, None], (vals.size, 1, n_pools))
        out, val = evaluate_and_value(scenario, placements, **{field: override})
    else:
        out, val = evaluate_and_value(scenario, placements, **{field: vals[:, None]})
    net = val.net_usd
    return SweepResult(
        field=field,
        values=vals,
        step_time_s=out.step_time_s[:, 0],
        effective_pflops=out.useful_flops_per_s[:, 0] / 1e15,
        efficiency=out.efficiency[:, 0],
        best_effective_pflops=np.take_along_axis(
            out.useful_flops_per_s, val.best_index[:, None], axis=-1
        )[:, 0]
        / 1e15,
        best_placement=tuple(placements[int(i)].key for i in val.best_index),
        internal_value_usd=val.internal_value_usd,
        rent_usd=val.rent_usd,
        net_usd=net,
        reclaim=val.reclaim,
        break_even=_first_flip(vals, net, val.reclaim),
    )


def _first_flip(
    values: FloatArray, net: FloatArray, reclaim: npt.NDArray[np.bool_]
) -> float | None:
    flips = np.nonzero(reclaim != reclaim[0])[0]
    if flips.size == 0:
        return None
    i = int(flips[0])
    x0, x1, y0, y1 = values[i - 1], values[i], net[i - 1], net[i]
    if np.isfinite(y0) and np.isfinite(y1) and y1 != y0 and (y0 <= 0.0) != (y1 <= 0.0):
        return float(x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0))
    return float(x1)
