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
- ``base_net_usd``: every knob at its base (below), the net of the decision as scored;
- tornado: each knob alone at its low and its high end (the others at their base), the net
  at each end and the swing, largest first.

Placements: the complete candidate list (placement.py, tens of placements) is evaluated at
the base and at every tornado end; the draws then use only the placements that ranked in the
top four there (overall, without leased pools, with leased pools only — the three maxima of
the valuation rule) and the scenario as given. A placement that is never near the top at any
knob's extremes is assumed not to become best at an interior draw (an approximation that
keeps 10,000 draws within a second).

Every range is drawn AROUND THE SCENARIO'S OWN VALUES, so that the base (every knob at its
identity: factor 1, shift 0) is the decision that was scored: ``base_net_usd`` equals the
assessment's net (summed over the parts) for the same placements. A knob either multiplies
the scenario's value (``kind`` "factor", low ≤ 1 ≤ high) or adds to it ("shift", low ≤ 0 ≤
high); the result is clipped to the input's valid domain (e.g. efficiency ≤ 1, jitter ≥ 0).
A range's mode (triangular) is where the truth is thought likeliest; the defaults put it at
the identity, and a range must contain the identity (the scenario's value is always possible).

Factors suit inputs that are positive and scale (scarcity, MFU, MTBF, line rate, efficiency,
restart cost). Shifts suit inputs the scenario often gives as 0 — no load imbalance, no slow
workers — where a factor would leave 0 at 0 whatever the draw: a shift range straddles 0, so
a value above 0 can move either way, and a value of 0 moves only upward (the draws below 0
are clipped to 0: that share of the draws, a third for slow workers, keeps the stated 0).

Link throughput (the line bound ``bandwidth · efficiency``, link.py) is two knobs. The line
rate is a ceiling (a wave or port never carries more than its rate), but our share of it can
be lower (a shared or protected route, a degraded span): ``link_bandwidth_factor`` is 0.5–1,
mode 1 (one-sided, at the scenario's rate). The efficiency derate is an estimate the truth
can beat or miss (a tuned stack gets more, loss and small messages less):
``link_efficiency_factor`` straddles 1 (0.8–1.1, mode 1), clipped so that the delivered rate
never exceeds the line rate (efficiency ≤ 1). A link with a calibration's measured
``usable_gbps`` ignores both (the measurement replaces the derived figure, model.py).

| knob | applies to | kind | default range (mode) |
| --- | --- | --- | --- |
| scarcity_factor | economics.scarcity_multiplier | factor | 0.5–2.0 (1) |
| mfu_factor | every pool's kernel MFU (≤ 1) | factor | 0.85–1.10 (1) |
| jitter_cv_shift | every pool's jitter cv (≥ 0) | shift | −0.01…+0.03 (0) |
| mtbf_factor | every pool's MTBF | factor | 0.5–1.5 (1) |
| link_bandwidth_factor | every link's line rate | factor | 0.5–1.0 (1) |
| link_efficiency_factor | every link's efficiency (≤ 1) | factor | 0.8–1.1 (1) |
| restart_cost_factor | economics.restart_cost_s | factor | 0.5–3.0 (1) |
| load_imbalance_cv_shift | workload (≥ 0) | shift | −0.03…+0.07 (0) |
| slow_worker_fraction_shift | workload (0–1) | shift | −0.001…+0.002 (0) |
| stage_imbalance_shift | workload (≥ 0) | shift | not drawn by default |
| slow_worker_slowdown_factor | workload (≥ 1) | factor | not drawn by default |
| diloco_quality_penalty_shift | workload (0–0.999) | shift | not drawn by default |
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .placement import Placement, candidate_placements, placement_inputs
from .scenario import Scenario, ScenarioError
from .valuation import evaluate_and_value, leased_mask, only_leased_mask

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Knob:
    """What a knob moves: the input ``field``, how (``kind``: "factor" multiplies the scenario's
    value, "shift" adds to it), the bounds of the knob's own figures (``lowest``, ``highest``)
    and the input's valid domain the result is clipped to (``floor``, ``ceiling``)."""

    field: str
    kind: str
    lowest: float
    highest: float
    floor: float
    ceiling: float

    @property
    def identity(self) -> float:
        """The knob's figure that leaves the scenario's value as it is (the base)."""
        return 1.0 if self.kind == "factor" else 0.0


def _factor(field: str, floor: float = 0.0, ceiling: float = np.inf) -> Knob:
    return Knob(field, "factor", 0.0, 1e6, floor, ceiling)


def _shift(field: str, span: float, floor: float = 0.0, ceiling: float = np.inf) -> Knob:
    return Knob(field, "shift", -span, span, floor, ceiling)


KNOBS: dict[str, Knob] = {
    "scarcity_factor": _factor("scarcity_multiplier"),
    "mfu_factor": _factor("mfu", ceiling=1.0),
    "jitter_cv_shift": _shift("jitter_cv", 10.0),
    "mtbf_factor": _factor("mtbf_hours", floor=1e-9),
    "link_bandwidth_factor": _factor("bandwidth_gbps", floor=1e-9),
    "link_efficiency_factor": _factor("efficiency", floor=1e-9, ceiling=1.0),
    "restart_cost_factor": _factor("restart_cost_s"),
    "load_imbalance_cv_shift": _shift("load_imbalance_cv", 10.0),
    "stage_imbalance_shift": _shift("stage_imbalance", 10.0),
    "slow_worker_fraction_shift": _shift("slow_worker_fraction", 1.0, ceiling=1.0),
    "slow_worker_slowdown_factor": _factor("slow_worker_slowdown", floor=1.0),
    "diloco_quality_penalty_shift": _shift("diloco_quality_penalty", 1.0, ceiling=0.999),
}
POOL_FIELDS = {"mfu", "jitter_cv", "mtbf_hours"}
LINK_FIELDS = {"bandwidth_gbps", "efficiency"}


@dataclass(frozen=True)
class Range:
    """An unknown input: a knob's figure (a factor or a shift of the scenario's value, see
    :data:`KNOBS`) uniform on [low, high], or triangular with ``mode`` inside. [low, high]
    contains the knob's identity, so the scenario's own value is always inside the range."""

    knob: str
    low: float
    high: float
    mode: float | None = None

    @property
    def kind(self) -> str:
        return KNOBS[self.knob].kind

    @property
    def base(self) -> float:
        """The figure used when the other knobs swing in the tornado: the identity (factor 1,
        shift 0), i.e. the scenario's own value, whatever the distribution's mode."""
        return KNOBS[self.knob].identity

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
        return {
            "knob": self.knob,
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, d: Any, path: str = "$") -> Range:
        """Parse and check a range document; ScenarioError with a path on any fault. ``kind``
        is optional (to_dict writes it) and must then be the knob's."""
        if not isinstance(d, dict) or set(d) - {"knob", "kind", "low", "high", "mode"}:
            raise ScenarioError(path, "a range is {knob, low, high[, mode]}")
        knob = d.get("knob")
        if knob not in KNOBS:
            raise ScenarioError(f"{path}.knob", f"must be one of {', '.join(KNOBS)}")
        spec = KNOBS[knob]
        if "kind" in d and d["kind"] != spec.kind:
            raise ScenarioError(f"{path}.kind", f"{knob} is a {spec.kind}")
        vals: list[float | None] = []
        for key in ("low", "high", "mode"):
            v = d.get(key)
            if v is None and key == "mode":
                vals.append(None)
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise ScenarioError(f"{path}.{key}", "must be a finite number")
            if not spec.lowest <= float(v) <= spec.highest:
                raise ScenarioError(
                    f"{path}.{key}", f"must lie in [{spec.lowest:g}, {spec.highest:g}]"
                )
            vals.append(float(v))
        low, high, mode = vals
        assert low is not None
        assert high is not None
        if low > high:
            raise ScenarioError(f"{path}.high", "must be ≥ low")
        if not low <= spec.identity <= high:
            raise ScenarioError(
                path,
                f"a {spec.kind} range must contain {spec.identity:g} (the scenario's own value)",
            )
        if mode is not None and not low <= mode <= high:
            raise ScenarioError(f"{path}.mode", "must lie in [low, high]")
        return cls(str(knob), low, high, mode)


# Default unknowns around the scenario's own values (docs/model.md, "Decisions with
# uncertainty"; every range is our choice, the module docstring says why each has its form).
DEFAULT_RANGES: tuple[Range, ...] = (
    Range("scarcity_factor", 0.5, 2.0, 1.0),
    Range("mfu_factor", 0.85, 1.10, 1.0),
    Range("jitter_cv_shift", -0.01, 0.03, 0.0),
    Range("mtbf_factor", 0.5, 1.5, 1.0),
    Range("link_bandwidth_factor", 0.5, 1.0, 1.0),
    Range("link_efficiency_factor", 0.8, 1.1, 1.0),
    Range("restart_cost_factor", 0.5, 3.0, 1.0),
    Range("load_imbalance_cv_shift", -0.03, 0.07, 0.0),
    Range("slow_worker_fraction_shift", -0.001, 0.002, 0.0),
)

DEFAULT_SAMPLES = 10_000
# /2: ranges are factors or shifts of the scenario's own values (/1 set some inputs outright).
SCHEMA = "landlord.uncertainty/2"


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
            "schema": SCHEMA,
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


def _overrides(
    scenario: Scenario, placements: list[Placement], ranges: Sequence[Range], values: FloatArray
) -> dict[str, FloatArray]:
    """Input overrides for each row of knob ``values`` (rows × len(ranges)) over the batch
    (rows × placements): the scenario's value times the factor or plus the shift, clipped to
    the input's domain (a row at every knob's identity leaves the scenario as it is)."""
    x = placement_inputs(scenario, placements)
    overrides: dict[str, FloatArray] = {}
    for j, rng in enumerate(ranges):
        spec = KNOBS[rng.knob]
        column = values[:, j]
        base = np.asarray(overrides.get(spec.field, getattr(x, spec.field)), dtype=np.float64)
        if spec.field in POOL_FIELDS or spec.field in LINK_FIELDS:
            if base.ndim < 3:
                base = np.broadcast_to(base, (1, *base.shape[-2:]))
            col = column[:, None, None]
        else:
            if base.ndim < 2:
                base = np.broadcast_to(base, (1, *base.shape[-1:]))
            col = column[:, None]
        new = base * col if spec.kind == "factor" else base + col
        overrides[spec.field] = np.clip(new, spec.floor, spec.ceiling)
    return overrides


# Placements kept for the sampled draws: the top few at every tornado row (module docstring).
KEEP_PER_ROW = 4


def _relevant(scenario: Scenario, ranges: Sequence[Range], probe: FloatArray) -> list[Placement]:
    """The placements that can matter to the value: at each probe row (the base and every
    tornado end), the KEEP_PER_ROW with the most useful throughput overall, among the
    placements without leased pools and among those with leased pools only (the three maxima
    of the valuation rule); the scenario as given always."""
    placements = candidate_placements(scenario)
    out, _ = evaluate_and_value(
        scenario, placements, **_overrides(scenario, placements, ranges, probe)
    )
    useful = np.asarray(out.useful_flops_per_s).reshape(probe.shape[0], len(placements))
    leased = leased_mask(scenario, placements)
    only = only_leased_mask(scenario, placements)
    keep = {0}
    for mask in (np.ones_like(leased), ~leased, only):
        if not mask.any():
            continue
        scores = np.where(mask[None, :], useful, -np.inf)
        top = np.argsort(-scores, axis=1)[:, :KEEP_PER_ROW]
        keep.update(int(i) for i in np.unique(top) if mask[int(i)])
    return [placements[i] for i in sorted(keep)]


def _net_for(scenario: Scenario, ranges: Sequence[Range], values: FloatArray) -> FloatArray:
    """Net (USD) of the scenario for each row of knob ``values`` (rows × len(ranges)); the
    placements are the relevant ones found at the base and tornado rows (the last
    1 + 2·len(ranges) rows of ``values``)."""
    probe = values[-(1 + 2 * len(ranges)) :]
    placements = _relevant(scenario, ranges, probe)
    rows = values.shape[0]
    _, val = evaluate_and_value(
        scenario, placements, **_overrides(scenario, placements, ranges, values)
    )
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
    "jitter_cv_shift": "jitter cv",
    "mtbf_factor": "MTBF ×",
    "link_bandwidth_factor": "link line rate ×",
    "link_efficiency_factor": "link efficiency ×",
    "restart_cost_factor": "restart cost ×",
    "load_imbalance_cv_shift": "load imbalance cv",
    "stage_imbalance_shift": "stage imbalance",
    "slow_worker_fraction_shift": "slow workers",
    "slow_worker_slowdown_factor": "slow-worker slowdown ×",
    "diloco_quality_penalty_shift": "DiLoCo penalty",
}


# Documents stored before /2 (docs/model.md, "Decisions with uncertainty"). Their ranges carry
# no ``kind``: the knobs of SCHEMA_1_FACTORS multiplied the scenario's value ("mul"), every other
# knob set the input outright ("abs"), and the base (the tornado's centre, ``net_usd.base``) had
# every knob at its range's mode (the middle of a uniform range), not the decision as scored.
SCHEMA_1 = "landlord.uncertainty/1"
SCHEMA_1_FACTORS = frozenset(
    {"scarcity_factor", "mfu_factor", "mtbf_factor", "link_bandwidth_factor"}
)
SCHEMA_1_NAMES = {
    "scarcity_factor": "scarcity",
    "mfu_factor": "kernel MFU",
    "jitter_cv": "jitter cv",
    "mtbf_factor": "MTBF",
    "link_bandwidth_factor": "link bandwidth",
    "link_efficiency": "link efficiency",
    "restart_cost_s": "restart cost s",
    "load_imbalance_cv": "load imbalance cv",
    "stage_imbalance": "stage imbalance",
    "slow_worker_fraction": "slow workers",
    "slow_worker_slowdown": "slow-worker slowdown",
    "diloco_quality_penalty": "DiLoCo penalty",
}


def stored_kind(schema: Any, range_doc: dict[str, Any]) -> str:
    """How a stored document's range moved its input: "factor" (× the scenario's value),
    "shift" (+ it) or, in a /1 document only, "value" (set outright); "" when unknown."""
    knob = range_doc.get("knob")
    if schema == SCHEMA_1:
        return "factor" if knob in SCHEMA_1_FACTORS else "value"
    spec = KNOBS.get(str(knob))
    kind = range_doc.get("kind") or (spec.kind if spec is not None else "")
    return kind if kind in ("factor", "shift") else ""


def _signed(x: float) -> str:
    return "0" if x == 0 else f"{x:+g}".replace("-", "−")


def range_label(knob: str, low: float, high: float, schema: Any = SCHEMA) -> str:
    """A tornado bar's name: "scarcity × 0.5–2" for a factor, "jitter cv −0.01 to +0.03" for
    a shift of the scenario's value; in a /1 document (``schema``), "jitter cv 0.01–0.05" for
    a knob that set the value (an unknown knob as given)."""
    if schema == SCHEMA_1:
        name = SCHEMA_1_NAMES.get(knob, knob)
        return f"{name}{' ×' if knob in SCHEMA_1_FACTORS else ''} {low:g}–{high:g}"
    label = KNOB_LABELS.get(knob, knob)
    spec = KNOBS.get(knob)
    if spec is not None and spec.kind == "shift":
        return f"{label} {_signed(low)} to {_signed(high)}"
    return f"{label} {low:g}–{high:g}"


def plot_tornado(decision: UncertainDecision | dict[str, Any], path: str | Path) -> Path:
    """Draw the tornado (net USD at each knob's low and high end around the base, the decision
    as scored; in a stored /1 document the ranges' modes) to .svg or .png (matplotlib,
    imported here only)."""
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
    schema = doc.get("schema", SCHEMA)
    ax.set_yticklabels([range_label(b["knob"], b["low"], b["high"], schema) for b in bars])
    ax.axvline(base, color="black", linewidth=0.8)
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    centre = "the ranges' modes" if schema == SCHEMA_1 else "the scored net"
    ax.set_xlabel(f"net USD (value − rent) around {centre}; red: low end, blue: high end")
    ax.set_title(
        f"P(reclaim beats renting) = {doc['probability_reclaim']:.1%} over {doc['samples']:,} draws"
    )
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target
