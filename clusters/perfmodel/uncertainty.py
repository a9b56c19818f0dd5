"""Decisions with their uncertainty: ranges on the inputs nobody knows exactly, the
probability that reclaiming beats renting, and a tornado of the inputs that move the answer.

docs/model.md, "Decisions with uncertainty". Each :class:`Range` names a knob (below) and a
distribution: uniform on [low, high], or triangular with the given mode. ``samples`` draws of
every knob (seeded; the same seed gives the same draws, so the parts of one decision share
their unknowns) are evaluated with every placement in ONE vectorized batch; each draw is valued
by the leased-aware rule of valuation.py. Results:

- ``probability_reclaim``: the share of draws whose net (value − rent, summed over the parts)
  is positive while some part has a non-empty window;
- net percentiles (5, 50, 95) and mean, USD;
- tornado: each knob alone at its low and its high end (the others at their base: the mode,
  or the middle of a uniform range), the net at each end and the swing, largest first.

Knobs (``kind``: ``abs`` sets the value; ``mul`` multiplies the scenario's own value):

| knob | applies to | kind |
| --- | --- | --- |
| scarcity_factor | economics.scarcity_multiplier | mul |
| mfu_factor | every pool's kernel MFU (capped at 1) | mul |
| jitter_cv | every pool's jitter | abs |
| mtbf_factor | every pool's MTBF | mul |
| link_bandwidth_factor | every link's bandwidth | mul |
| link_efficiency | every link's efficiency | abs |
| restart_cost_s | economics.restart_cost_s | abs |
| load_imbalance_cv, stage_imbalance | workload | abs |
| slow_worker_fraction, slow_worker_slowdown, diloco_quality_penalty | workload | abs |
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .placement import candidate_placements, placement_inputs
from .scenario import Scenario, ScenarioError
from .valuation import evaluate_and_value

FloatArray = npt.NDArray[np.float64]

# knob → (input field, kind, lowest allowed, highest allowed)
KNOBS: dict[str, tuple[str, str, float, float]] = {
    "scarcity_factor": ("scarcity_multiplier", "mul", 0.0, 1e6),
    "mfu_factor": ("mfu", "mul", 1e-6, 1e6),
    "jitter_cv": ("jitter_cv", "abs", 0.0, 10.0),
    "mtbf_factor": ("mtbf_hours", "mul", 1e-6, 1e6),
    "link_bandwidth_factor": ("bandwidth_gbps", "mul", 1e-6, 1e6),
    "link_efficiency": ("efficiency", "abs", 1e-6, 1.0),
    "restart_cost_s": ("restart_cost_s", "abs", 0.0, 1e7),
    "load_imbalance_cv": ("load_imbalance_cv", "abs", 0.0, 10.0),
    "stage_imbalance": ("stage_imbalance", "abs", 0.0, 10.0),
    "slow_worker_fraction": ("slow_worker_fraction", "abs", 0.0, 1.0),
    "slow_worker_slowdown": ("slow_worker_slowdown", "abs", 1.0, 1e3),
    "diloco_quality_penalty": ("diloco_quality_penalty", "abs", 0.0, 0.999),
}
POOL_FIELDS = {"mfu", "jitter_cv", "mtbf_hours"}
LINK_FIELDS = {"bandwidth_gbps", "efficiency"}


@dataclass(frozen=True)
class Range:
    """An unknown input: uniform on [low, high], or triangular with ``mode`` inside."""

    knob: str
    low: float
    high: float
    mode: float | None = None

    @property
    def base(self) -> float:
        """The value used when the other knobs swing in the tornado."""
        return self.mode if self.mode is not None else 0.5 * (self.low + self.high)

    def quantile(self, u: FloatArray) -> FloatArray:
        """Inverse CDF of the distribution at uniforms u."""
        lo, hi = self.low, self.high
        if self.mode is None or hi == lo:
            return lo + (hi - lo) * u
        c = (self.mode - lo) / (hi - lo)
        left = lo + np.sqrt(u * (hi - lo) * (self.mode - lo))
        right = hi - np.sqrt((1.0 - u) * (hi - lo) * (hi - self.mode))
        out: FloatArray = np.where(u < c, left, right)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"knob": self.knob, "low": self.low, "high": self.high, "mode": self.mode}

    @classmethod
    def from_dict(cls, d: Any, path: str = "$") -> Range:
        """Parse and check a range document; ScenarioError with a path on any fault."""
        if not isinstance(d, dict) or set(d) - {"knob", "low", "high", "mode"}:
            raise ScenarioError(path, "a range is {knob, low, high[, mode]}")
        knob = d.get("knob")
        if knob not in KNOBS:
            raise ScenarioError(f"{path}.knob", f"must be one of {', '.join(KNOBS)}")
        _, _, floor, ceiling = KNOBS[knob]
        vals: list[float | None] = []
        for key in ("low", "high", "mode"):
            v = d.get(key)
            if v is None and key == "mode":
                vals.append(None)
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise ScenarioError(f"{path}.{key}", "must be a finite number")
            if not floor <= float(v) <= ceiling:
                raise ScenarioError(f"{path}.{key}", f"must lie in [{floor:g}, {ceiling:g}]")
            vals.append(float(v))
        low, high, mode = vals
        assert low is not None
        assert high is not None
        if low > high:
            raise ScenarioError(f"{path}.high", "must be ≥ low")
        if mode is not None and not low <= mode <= high:
            raise ScenarioError(f"{path}.mode", "must lie in [low, high]")
        return cls(str(knob), low, high, mode)


# Default unknowns (docs/model.md, "Decisions with uncertainty"; every range is our choice).
DEFAULT_RANGES: tuple[Range, ...] = (
    Range("scarcity_factor", 0.5, 2.0, 1.0),
    Range("mfu_factor", 0.85, 1.10, 1.0),
    Range("jitter_cv", 0.01, 0.05, 0.02),
    Range("mtbf_factor", 0.5, 1.5, 1.0),
    Range("link_bandwidth_factor", 0.5, 1.0, 0.9),
    Range("link_efficiency", 0.6, 0.95),
    Range("restart_cost_s", 300.0, 1800.0, 600.0),
    Range("load_imbalance_cv", 0.0, 0.10),
    Range("slow_worker_fraction", 0.0, 0.002),
)

DEFAULT_SAMPLES = 10_000


@dataclass(frozen=True)
class TornadoBar:
    knob: str
    low: float
    high: float
    net_at_low_usd: float
    net_at_high_usd: float

    @property
    def swing_usd(self) -> float:
        return abs(self.net_at_high_usd - self.net_at_low_usd)


@dataclass(frozen=True)
class UncertainDecision:
    """The decision over the sampled unknowns (module docstring). Money in USD."""

    samples: int
    seed: int
    ranges: tuple[Range, ...]
    probability_reclaim: float
    net_mean_usd: float
    net_p5_usd: float
    net_p50_usd: float
    net_p95_usd: float
    base_net_usd: float
    tornado: tuple[TornadoBar, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "landlord.uncertainty/1",
            "samples": self.samples,
            "seed": self.seed,
            "ranges": [r.to_dict() for r in self.ranges],
            "probability_reclaim": round(self.probability_reclaim, 4),
            "net_usd": {
                "mean": round(self.net_mean_usd, 2),
                "p5": round(self.net_p5_usd, 2),
                "p50": round(self.net_p50_usd, 2),
                "p95": round(self.net_p95_usd, 2),
                "base": round(self.base_net_usd, 2),
            },
            "tornado": [
                {
                    "knob": b.knob,
                    "low": b.low,
                    "high": b.high,
                    "net_at_low_usd": round(b.net_at_low_usd, 2),
                    "net_at_high_usd": round(b.net_at_high_usd, 2),
                    "swing_usd": round(b.swing_usd, 2),
                }
                for b in self.tornado
            ],
        }


def _net_for(scenario: Scenario, ranges: Sequence[Range], values: FloatArray) -> FloatArray:
    """Net (USD) of the scenario for each row of knob ``values`` (rows × len(ranges))."""
    placements = candidate_placements(scenario)
    x = placement_inputs(scenario, placements)
    rows = values.shape[0]
    overrides: dict[str, FloatArray] = {}
    for j, rng in enumerate(ranges):
        field, kind, _, _ = KNOBS[rng.knob]
        column = values[:, j]
        base = np.asarray(overrides.get(field, getattr(x, field)), dtype=np.float64)
        if field in POOL_FIELDS or field in LINK_FIELDS:
            if base.ndim < 3:
                base = np.broadcast_to(base, (1, *base.shape[-2:]))
            col = column[:, None, None]
        else:
            if base.ndim < 2:
                base = np.broadcast_to(base, (1, *base.shape[-1:]))
            col = column[:, None]
        new = (
            base * col
            if kind == "mul"
            else np.broadcast_to(col, np.broadcast_shapes(base.shape, col.shape))
        )
        if field == "mfu":
            new = np.minimum(new, 1.0)
        overrides[field] = np.asarray(new, dtype=np.float64)
    _, val = evaluate_and_value(scenario, placements, **overrides)
    net = np.broadcast_to(val.net_usd, (rows,))
    return np.asarray(net, dtype=np.float64)


def decide(
    scenarios: Scenario | Sequence[Scenario],
    ranges: Sequence[Range] = DEFAULT_RANGES,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> UncertainDecision:
    """Sample the unknowns and decide (module docstring). Several scenarios are the parts of one
    decision: their nets are added draw by draw (the same draws for every part)."""
    started = time.perf_counter()
    parts = [scenarios] if isinstance(scenarios, Scenario) else list(scenarios)
    ranges = tuple(ranges)
    if not parts:
        raise ValueError("no scenario to decide")
    if samples < 1:
        raise ValueError("samples must be ≥ 1")
    rng = np.random.default_rng(seed)
    u = rng.random((samples, len(ranges)))
    draws = (
        np.column_stack([r.quantile(u[:, j]) for j, r in enumerate(ranges)])
        if ranges
        else (np.zeros((samples, 0)))
    )
    base = np.array([[r.base for r in ranges]], dtype=np.float64).reshape(1, len(ranges))
    # Tornado rows: base, then each knob at its low and its high end.
    swing_rows = np.repeat(base, 2 * len(ranges), axis=0)
    for j, r in enumerate(ranges):
        swing_rows[2 * j, j] = r.low
        swing_rows[2 * j + 1, j] = r.high
    rows = np.vstack([draws, base, swing_rows])
    net = np.zeros(rows.shape[0])
    for sc in parts:
        net += _net_for(sc, ranges, rows)
    any_window = any(sc.economics.horizon_days > 0.0 for sc in parts)
    sampled = net[:samples]
    bars = [
        TornadoBar(
            r.knob,
            r.low,
            r.high,
            float(net[samples + 1 + 2 * j]),
            float(net[samples + 2 + 2 * j]),
        )
        for j, r in enumerate(ranges)
    ]
    bars.sort(key=lambda b: b.swing_usd, reverse=True)
    p5, p50, p95 = np.percentile(sampled, [5, 50, 95])
    return UncertainDecision(
        samples=samples,
        seed=seed,
        ranges=ranges,
        probability_reclaim=float(np.mean(sampled > 0.0)) if any_window else 0.0,
        net_mean_usd=float(np.mean(sampled)),
        net_p5_usd=float(p5),
        net_p50_usd=float(p50),
        net_p95_usd=float(p95),
        base_net_usd=float(net[samples]),
        tornado=tuple(bars),
        seconds=time.perf_counter() - started,
    )


def parse_ranges(doc: Any) -> tuple[Range, ...]:
    """A list of range documents (or None → the defaults); ScenarioError on any fault."""
    if doc is None:
        return DEFAULT_RANGES
    if not isinstance(doc, list):
        raise ScenarioError("$.ranges", "must be a list of ranges")
    out = tuple(Range.from_dict(d, f"$.ranges[{i}]") for i, d in enumerate(doc))
    if len({r.knob for r in out}) != len(out):
        raise ScenarioError("$.ranges", "each knob at most once")
    return out


KNOB_LABELS = {
    "scarcity_factor": "scarcity ×",
    "mfu_factor": "kernel MFU ×",
    "jitter_cv": "jitter cv",
    "mtbf_factor": "MTBF ×",
    "link_bandwidth_factor": "link bandwidth ×",
    "link_efficiency": "link efficiency",
    "restart_cost_s": "restart cost s",
    "load_imbalance_cv": "load imbalance cv",
    "stage_imbalance": "stage imbalance",
    "slow_worker_fraction": "slow workers",
    "slow_worker_slowdown": "slow-worker slowdown",
    "diloco_quality_penalty": "DiLoCo penalty",
}


def plot_tornado(decision: UncertainDecision | dict[str, Any], path: str | Path) -> Path:
    """Draw the tornado (net USD at each knob's low and high end around the base) to .svg or
    .png (matplotlib, imported here only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = decision.to_dict() if isinstance(decision, UncertainDecision) else decision
    target = Path(path)
    if target.suffix.lower() not in (".svg", ".png"):
        raise ValueError("the tornado is drawn to .svg or .png")
    bars = list(reversed(doc["tornado"]))
    base = doc["net_usd"]["base"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.6))
    for i, b in enumerate(bars):
        lo, hi = b["net_at_low_usd"], b["net_at_high_usd"]
        ax.barh(i, lo - base, left=base, color="#c0504d", height=0.6)
        ax.barh(i, hi - base, left=base, color="#4f81bd", height=0.6)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels(
        [f"{KNOB_LABELS.get(b['knob'], b['knob'])} {b['low']:g}–{b['high']:g}" for b in bars]
    )
    ax.axvline(base, color="black", linewidth=0.8)
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("net USD (value − rent); red: low end, blue: high end")
    ax.set_title(
        f"P(reclaim beats renting) = {doc['probability_reclaim']:.1%} over {doc['samples']:,} draws"
    )
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target
