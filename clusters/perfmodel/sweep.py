"""Sensitivity sweeps: one input varied over many values, every placement, one batch.

Fields (all placements see the same value):

- ``scarcity_multiplier``: the economics multiplier (dimensionless).
- ``link_bandwidth_gbps``: every inter-site link set to this bandwidth, Gbit/s.
- ``rent_per_month_usd``: rent of the leased capacity, USD/month.
- ``horizon_days``: the compared window, days.
- ``jitter_cv``: every accelerator's step-time jitter set to this value.
- ``mfu``: every accelerator's MFU set to this value (0–1].
- ``overlap_s``: the overlap window, s.
- ``diloco_inner_steps``: H (an integer field: a spec's points are rounded to whole steps).

Every value must pass the bound the scenario parser enforces on the field it stands for
(:data:`SWEEP_BOUNDS`, read from ``scenario.FIELD_BOUNDS``), and a sweep has at most
:data:`MAX_SWEEP_POINTS` values; a refusal raises a :class:`ScenarioError` naming the sweep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .placement import candidate_placements
from .scenario import FIELD_BOUNDS, Bound, Scenario, ScenarioError
from .valuation import evaluate_and_value

FloatArray = npt.NDArray[np.float64]

# Each sweep field and the bound of the scenario field it stands for.
SWEEP_BOUNDS: dict[str, Bound] = {
    "scarcity_multiplier": FIELD_BOUNDS["economics"]["scarcity_multiplier"],
    "link_bandwidth_gbps": FIELD_BOUNDS["link"]["bandwidth_gbps"],
    "rent_per_month_usd": FIELD_BOUNDS["economics"]["rent_per_month_usd"],
    "horizon_days": FIELD_BOUNDS["economics"]["horizon_days"],
    "jitter_cv": FIELD_BOUNDS["accelerator"]["jitter_cv"],
    "mfu": FIELD_BOUNDS["accelerator"]["mfu"],
    "overlap_s": FIELD_BOUNDS["workload"]["overlap_s"],
    "diloco_inner_steps": FIELD_BOUNDS["workload"]["diloco_inner_steps"],
}
SWEEP_FIELDS = tuple(SWEEP_BOUNDS)
# At most this many values in one sweep (a spec's N is checked before anything is allocated):
# one batch is values × placements × pools, and a table of more rows is no longer read.
MAX_SWEEP_POINTS = 10_000
# START and STOP: a plain decimal number in ASCII digits (no nan, inf, underscores, spaces or
# other scripts' digits, all of which float() takes); N: ASCII digits.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")
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
    """Parse ``FIELD=START:STOP:N`` (linear) or ``FIELD=START:STOP:N:log`` (geometric).

    START and STOP must pass the field's bound (:data:`SWEEP_BOUNDS`), 2 ≤ N ≤
    :data:`MAX_SWEEP_POINTS`; an integer field's points are rounded to integers. Any fault is a
    :class:`ScenarioError` whose path names the sweep (``--sweep mfu STOP``).
    """
    if "=" not in spec:
        raise ScenarioError("--sweep", f"{_short(spec)} must look like FIELD=START:STOP:N")
    name, _, rng = spec.partition("=")
    name = name.strip()
    if name not in SWEEP_FIELDS:
        raise ScenarioError(
            "--sweep", f"unknown sweep field {_short(name)}; one of {', '.join(SWEEP_FIELDS)}"
        )
    where = f"--sweep {name}"
    parts = rng.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
        raise ScenarioError(where, f"range {_short(rng)} must be START:STOP:N or START:STOP:N:log")
    bound = SWEEP_BOUNDS[name]
    start, stop = (
        _endpoint(text, bound, f"{where} {label}")
        for text, label in ((parts[0], "START"), (parts[1], "STOP"))
    )
    digits = parts[2]
    if not _DIGITS.fullmatch(digits):
        raise ScenarioError(f"{where} N", f"must be a whole number, got {_short(digits)}")
    significant = digits.lstrip("0")
    # Compared as text first: a thousand-digit N is refused without converting it.
    if len(significant) > 9 or not 2 <= int(significant or "0") <= MAX_SWEEP_POINTS:
        raise ScenarioError(
            f"{where} N", f"must be 2 to {MAX_SWEEP_POINTS:,}, got {_short(digits)}"
        )
    count = int(significant)
    if len(parts) == 4:
        if start <= 0 or stop <= 0:
            raise ScenarioError(where, "a log sweep needs START and STOP > 0")
        values = np.geomspace(start, stop, count)
    else:
        values = np.linspace(start, stop, count)
    if bound.integer:
        values = np.round(values)
    return name, check_values(name, values, where)


def check_values(field: str, values: npt.ArrayLike, path: str | None = None) -> FloatArray:
    """``values`` as a 1-d float array if there are 1 to :data:`MAX_SWEEP_POINTS` of them and
    each passes the field's bound; otherwise a ScenarioError at ``path`` (default ``sweep
    FIELD``) naming the first value refused and its index."""
    where = path or f"sweep {field}"
    if field not in SWEEP_BOUNDS:
        raise ScenarioError(where, f"unknown sweep field {_short(field)}")
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 1 <= vals.size <= MAX_SWEEP_POINTS:
        raise ScenarioError(where, f"takes 1 to {MAX_SWEEP_POINTS:,} values, got {vals.size:,}")
    bound = SWEEP_BOUNDS[field]
    for i, v in enumerate(vals.tolist()):
        bound.check(int(v) if bound.integer and v.is_integer() else v, f"{where}[{i}]")
    return vals


def _endpoint(text: str, bound: Bound, path: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise ScenarioError(path, f"must be a decimal number, got {_short(text)}")
    value = float(text)  # a decimal literal beyond float64 reads as ±inf: the bound refuses it
    return float(bound.check(int(value) if bound.integer and value.is_integer() else value, path))


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def sweep(scenario: Scenario, field: str, values: npt.ArrayLike) -> SweepResult:
    """Evaluate the scenario with ``field`` set to each of ``values`` (see module docstring).

    One vectorized evaluation of (values × placements). ``values`` are checked as by
    :func:`check_values` (ScenarioError before any evaluation).
    """
    vals = check_values(field, values)
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
