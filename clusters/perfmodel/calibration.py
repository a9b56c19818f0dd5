"""Fit link and collective parameters to measured all-reduce times (docs/model.md, "Calibration").

Two kinds of measurement feed it:

* nccl-tests ``all_reduce_perf`` output (:mod:`.nccl`): time per message size on one cluster or
  across one link, ``n`` ranks;
* the harness's CSV (bench/data/allreduce_measurements.csv): a real gloo all-reduce over
  emulated links of known delay, rate and loss.

:func:`fit_allreduce` fits the per-step latency α and the usable throughput U of
:func:`.link.pipelined_ring_allreduce_s` to (size, ranks, time) points by least relative
squares on a log grid refined four times (no SciPy); with ``segments`` = 1 this is the classic
α-β ring. The harness's links are fitted that way (two segments, one regime).

nccl-tests curves are fitted piecewise (:func:`fit_piecewise`): NCCL switches protocol and
algorithm and adds channels as sizes grow, so the curve is several α-β regimes, each a
contiguous size range with its own one-segment ring, the split points chosen by dynamic
programming and the number of regimes by a stated error bound. The model takes α from the
smallest sizes and U from the largest (:class:`PiecewiseFit`).

:func:`fit_transport` fits the four transport constants of the harness (per-step software
overhead, rendezvous round trips, efficiency, Mathis' C) so that :func:`predict_harness`
reproduces the whole grid. Pure: numpy only.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from . import link
from .nccl import MAX_SIZE_BYTES, MAX_TIME_US, MIN_SIZE_BYTES, MIN_TIME_US, AllReduceRow

FloatArray = npt.NDArray[np.float64]


class CalibrationError(ValueError):
    """The measurements cannot support a fit (too few points, non-positive times...)."""


# The ranks of a measured all-reduce: a ring needs two; 10^7 is far beyond any cluster (the
# scenario's pools are bounded only below).
MIN_RANKS = 2
MAX_RANKS = 10_000_000
# What a fit may conclude (anything beyond is a broken measurement, not a network): a usable
# throughput of at most 10^6 Gbit/s (a petabit per second; NVLink moves about 10^4 Gbit/s per
# GPU) and a per-step latency of at most 10^7 µs (10 s).
MAX_USABLE_GBPS = 1e6
MAX_STEP_LATENCY_US = 1e7


def check_ranks(ranks: int) -> None:
    """Raise :class:`CalibrationError` unless ``MIN_RANKS`` ≤ ``ranks`` ≤ ``MAX_RANKS``."""
    if ranks < MIN_RANKS:
        raise CalibrationError("an all-reduce needs at least two ranks")
    if ranks > MAX_RANKS:
        raise CalibrationError(f"at most {MAX_RANKS:,} ranks")


@contextmanager
def _numerically() -> Iterator[None]:
    """A fit's arithmetic failing (overflow, a singular system) is a measurement it cannot use."""
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            yield
    except (ArithmeticError, np.linalg.LinAlgError) as exc:
        raise CalibrationError(f"the fit failed numerically ({exc})") from None


def _check_plausible(step_latency_us: float, usable_gbps: float) -> None:
    """Refuse figures no network has (NaN included): see ``MAX_USABLE_GBPS``."""
    if not 0.0 <= step_latency_us <= MAX_STEP_LATENCY_US:
        raise CalibrationError(
            f"fitted step latency {step_latency_us:.4g} µs is outside 0 – "
            f"{MAX_STEP_LATENCY_US:,.0f} µs"
        )
    if not 0.0 < usable_gbps <= MAX_USABLE_GBPS:
        raise CalibrationError(
            f"fitted usable throughput {usable_gbps:.4g} Gbit/s is outside 0 – "
            f"{MAX_USABLE_GBPS:,.0f} Gbit/s"
        )


class _Units:
    """A ring's α (s) and U (bytes/s) in the units calibrations are stored in: µs, Gbit/s."""

    if TYPE_CHECKING:

        @property
        def step_latency_s(self) -> float: ...

        @property
        def usable_bytes_per_s(self) -> float: ...

    @property
    def step_latency_us(self) -> float:
        return self.step_latency_s * 1e6

    @property
    def usable_gbps(self) -> float:
        return self.usable_bytes_per_s * 8.0 / 1e9


@dataclass(frozen=True)
class AllReduceFit(_Units):
    """α-β parameters of an all-reduce and how well they reproduce the points they came from."""

    step_latency_s: float
    usable_bytes_per_s: float
    ranks: int
    segments: int
    points: int
    median_rel_error: float
    max_rel_error: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            **asdict(self),
            "step_latency_us": self.step_latency_us,
            "usable_gbps": self.usable_gbps,
        }


def _errors(predicted: FloatArray, measured: FloatArray) -> FloatArray:
    out: FloatArray = (predicted - measured) / measured
    return out


def _validated(
    sizes_bytes: Sequence[float], times_s: Sequence[float], ranks: int | Sequence[int]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    try:  # a size of 10^400 B is no float
        s = np.asarray(sizes_bytes, dtype=np.float64)
        t = np.asarray(times_s, dtype=np.float64)
        n = np.asarray(ranks, dtype=np.float64)
    except (OverflowError, TypeError, ValueError):
        raise CalibrationError("sizes, times and ranks must be finite numbers") from None
    if s.ndim != 1 or s.shape != t.shape or len(s) < 2 or n.shape not in ((), s.shape):
        raise CalibrationError("need at least two (size, time) points of equal length")
    n = np.broadcast_to(n, s.shape)
    if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise CalibrationError("sizes and times must be positive and finite")
    if np.any(s < MIN_SIZE_BYTES) or np.any(s > MAX_SIZE_BYTES):
        raise CalibrationError(f"message sizes must be {MIN_SIZE_BYTES} – {MAX_SIZE_BYTES:,} B")
    if np.any(t < MIN_TIME_US * 1e-6) or np.any(t > MAX_TIME_US * 1e-6):
        raise CalibrationError(f"times must be {MIN_TIME_US:g} – {MAX_TIME_US:g} µs")
    if len(np.unique(s)) < 2:
        raise CalibrationError("need at least two distinct message sizes")
    if not np.all(np.isfinite(n)):
        raise CalibrationError("sizes, times and ranks must be finite numbers")
    check_ranks(int(n.min()))
    check_ranks(int(n.max()))
    return s, t, n


def fit_allreduce(
    sizes_bytes: Sequence[float],
    times_s: Sequence[float],
    ranks: int | Sequence[int],
    segments: int = 1,
) -> AllReduceFit:
    """Fit (α, U) of the pipelined ring to measured all-reduce times (least relative squares).

    ``ranks`` is one count for every point or one per point. Needs at least two distinct sizes
    and positive times, each within the bounds of :func:`fit_piecewise`, and a plausible fit;
    raises :class:`CalibrationError` otherwise.
    """
    s, t, n = _validated(sizes_bytes, times_s, ranks)
    with _numerically():
        fit = _fit_allreduce(s, t, n, segments)
    _check_plausible(fit.step_latency_us, fit.usable_gbps)
    return fit


def _fit_allreduce(s: FloatArray, t: FloatArray, n: FloatArray, segments: int) -> AllReduceFit:
    # Start: α from the smallest message, U from the largest.
    alpha0 = max(float(t.min()) / (2.0 * float(n.max() - 1.0)), 1e-9)
    u0 = float(s.max() / t.max())
    lo_a, hi_a = np.log(alpha0 / 1e3), np.log(alpha0 * 10.0)
    lo_u, hi_u = np.log(u0 / 10.0), np.log(u0 * 1e3)
    best = (np.inf, alpha0, u0)
    for _ in range(4):
        a = np.exp(np.linspace(lo_a, hi_a, 96))[:, None, None]
        u = np.exp(np.linspace(lo_u, hi_u, 96))[None, :, None]
        pred = link.pipelined_ring_allreduce_s(s, n, u, a, segments)
        cost = np.sum(_errors(pred, t) ** 2, axis=-1)
        i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
        if cost[i, j] < best[0]:
            best = (float(cost[i, j]), float(a[i, 0, 0]), float(u[0, j, 0]))
        step_a = (hi_a - lo_a) / 95.0
        step_u = (hi_u - lo_u) / 95.0
        la, lu = np.log(best[1]), np.log(best[2])
        lo_a, hi_a = la - 2 * step_a, la + 2 * step_a
        lo_u, hi_u = lu - 2 * step_u, lu + 2 * step_u
    _, alpha, usable = best
    err = np.abs(_errors(link.pipelined_ring_allreduce_s(s, n, usable, alpha, segments), t))
    return AllReduceFit(
        step_latency_s=alpha,
        usable_bytes_per_s=usable,
        ranks=int(n.max()),
        segments=segments,
        points=len(s),
        median_rel_error=float(np.median(err)),
        max_rel_error=float(err.max()),
    )


def fit_nccl(rows: Sequence[AllReduceRow], ranks: int, min_bytes: int = 0) -> PiecewiseFit:
    """Fit an ``all_reduce_perf`` run (out-of-place times) of ``ranks`` ranks: its regimes
    (:func:`fit_piecewise`).

    NCCL pipelines many slices per chunk, so each regime is the classic α-β ring (one segment);
    sizes below ``min_bytes`` can be left out.
    """
    chosen = [r for r in rows if r.size_bytes >= max(min_bytes, MIN_SIZE_BYTES)]
    return fit_piecewise([r.size_bytes for r in chosen], [r.time_us * 1e-6 for r in chosen], ranks)


# --- piecewise α-β (nccl-tests) ---------------------------------------------------------------

# The rule that picks the number of regimes (fit_piecewise): the fewest, up to MAX_REGIMES, whose
# every point is within REGIME_TOLERANCE; each regime spans at least MIN_REGIME_SIZES sizes.
MAX_REGIMES = 4
REGIME_TOLERANCE = 0.10
MIN_REGIME_SIZES = 3
# At most this many places where a regime may start (a run's sizes; nccl-tests' default
# doubling from 8 B to 8 GiB gives 31): bounds the search on very long runs.
MAX_SPLIT_POINTS = 64


@dataclass(frozen=True)
class Regime(_Units):
    """One contiguous range of message sizes and its own ring (α per step, U).

    ``min_bytes``/``max_bytes`` are the smallest and largest measured sizes it was fitted to;
    ``usable_bytes_per_s`` is ``inf`` when its times do not grow with size (latency only).
    """

    min_bytes: int
    max_bytes: int
    step_latency_s: float
    usable_bytes_per_s: float
    points: int
    median_rel_error: float
    max_rel_error: float

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready (stored with a calibration): µs and Gbit/s, None for an unbounded U."""
        return {
            "min_bytes": self.min_bytes,
            "max_bytes": self.max_bytes,
            "step_latency_us": self.step_latency_us,
            "usable_gbps": self.usable_gbps if np.isfinite(self.usable_gbps) else None,
            "points": self.points,
            "median_rel_error": self.median_rel_error,
            "max_rel_error": self.max_rel_error,
        }


@dataclass(frozen=True)
class PiecewiseFit(_Units):
    """Regimes of an nccl-tests curve, smallest sizes first, and the figures the model uses.

    ``usable_bytes_per_s`` is the last regime's U: the model all-reduces each step's gradient
    (hundreds of MB and more per rank, sent by training frameworks in buckets of tens of MB and
    up), i.e. the largest messages, where NCCL runs its bandwidth protocol on every channel and
    nccl-tests' bus bandwidth plateaus.
    ``step_latency_s`` is the first regime's α (the first that resolves one, α > 0): on the
    smallest messages the time is latency alone, so α is measured there; the larger regimes'
    α also absorb protocol and pipeline start-up and are not a per-step latency. The errors are
    the piecewise prediction's over every point; ``single`` is the one-regime fit of the same
    points, for comparison.
    """

    regimes: tuple[Regime, ...]
    ranks: int
    points: int
    median_rel_error: float
    max_rel_error: float
    single: Regime

    @property
    def step_latency_s(self) -> float:
        # The first regime that resolves a latency (a fit at α = 0 measured none).
        return next(r.step_latency_s for r in self.regimes if r.step_latency_s > 0.0)

    @property
    def usable_bytes_per_s(self) -> float:
        return self.regimes[-1].usable_bytes_per_s

    def predict(self, sizes_bytes: Sequence[float]) -> FloatArray:
        """All-reduce time (s) of each size by the regime that covers it (`predict_piecewise`)."""
        return predict_piecewise([r.as_dict() for r in self.regimes], sizes_bytes, self.ranks)


def regime_index(
    regimes: Sequence[Mapping[str, float | int | None]], sizes_bytes: Sequence[float] | FloatArray
) -> npt.NDArray[np.intp]:
    """Which of the stored regimes (sorted) covers each size (see :func:`predict_piecewise`)."""
    starts = np.array([float(r["min_bytes"] or 0) for r in regimes])
    found = np.searchsorted(starts, np.asarray(sizes_bytes, dtype=np.float64), side="right")
    out: npt.NDArray[np.intp] = np.clip(found - 1, 0, len(regimes) - 1)
    return out


def predict_piecewise(
    regimes: Sequence[Mapping[str, float | int | None]], sizes_bytes: Sequence[float], ranks: int
) -> FloatArray:
    """All-reduce time (s) of each size by stored regimes (``Regime.as_dict`` form, sorted).

    A size is covered by the last regime whose ``min_bytes`` it reaches (the first regime below
    every regime): the ranges are contiguous, each from its smallest measured size up to the
    next regime's, and a size between two measured ones goes with the lower regime.
    """
    s = np.asarray(sizes_bytes, dtype=np.float64)
    which = regime_index(regimes, s)
    alpha = np.array([float(r["step_latency_us"] or 0.0) * 1e-6 for r in regimes])[which]
    gbps = [r["usable_gbps"] for r in regimes]
    usable = np.array([np.inf if g is None else float(g) * 1e9 / 8.0 for g in gbps])[which]
    return link.pipelined_ring_allreduce_s(s, ranks, usable, alpha, 1)


def _ring_terms(s: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The one-segment ring is ``x_α·α + x_b·(1/U)``: (x_α, x_b) of each point."""
    return 2.0 * (n - 1.0), 2.0 * (n - 1.0) / n * s


def _nonneg_relative_lsq(xa: FloatArray, xb: FloatArray, t: FloatArray) -> tuple[float, float]:
    """(α, 1/U) ≥ 0 minimising Σ((x_α·α + x_b/U − t)/t)²: a two-unknown non-negative least
    squares, solved exactly (the unconstrained optimum, else the best on either boundary)."""
    scale = np.array([np.linalg.norm(xa / t), np.linalg.norm(xb / t)])  # condition the columns
    a = np.stack([xa / t, xb / t], axis=1) / scale
    y = np.ones_like(t)
    candidates: list[tuple[float, float]] = []
    sol, *_ = np.linalg.lstsq(a, y, rcond=None)
    if sol[0] >= 0.0 and sol[1] >= 0.0:
        candidates.append((float(sol[0]), float(sol[1])))
    for col in (0, 1):
        c = a[:, col]
        v = max(float(c @ y) / float(c @ c), 0.0)
        candidates.append((v, 0.0) if col == 0 else (0.0, v))

    def cost(p: tuple[float, float]) -> float:
        return float(np.sum((a @ np.array(p) - y) ** 2))

    best = min(candidates, key=cost)
    return best[0] / float(scale[0]), best[1] / float(scale[1])


def _regime(s: FloatArray, t: FloatArray, n: FloatArray) -> tuple[Regime, float]:
    """Fit one regime to its points; (the regime, its sum of squared relative errors)."""
    xa, xb = _ring_terms(s, n)
    alpha, inv_u = _nonneg_relative_lsq(xa, xb, t)
    err = _errors(xa * alpha + xb * inv_u, t)
    regime = Regime(
        min_bytes=int(s.min()),
        max_bytes=int(s.max()),
        step_latency_s=alpha,
        usable_bytes_per_s=1.0 / inv_u if inv_u > 0.0 else float("inf"),
        points=len(s),
        median_rel_error=float(np.median(np.abs(err))),
        max_rel_error=float(np.max(np.abs(err))),
    )
    return regime, float(np.sum(err**2))


def piecewise_candidates(
    sizes_bytes: Sequence[float],
    times_s: Sequence[float],
    ranks: int | Sequence[int],
    max_regimes: int = MAX_REGIMES,
) -> list[tuple[Regime, ...]]:
    """The best split of the points into 1, 2, … ``max_regimes`` regimes (fewer when the sizes
    run out), by least relative squares.

    Points are sorted by size; a regime is a contiguous run of distinct sizes (every point of a
    size in the same regime) holding at least ``MIN_REGIME_SIZES`` of them (a single regime: two).
    The split points are found by dynamic programming over the distinct sizes: the best k-regime
    split ending at size j is the best (k−1)-regime split ending at some i plus the one regime
    fitted to sizes i..j, each regime's cost its sum of squared relative errors. A run of more
    than ``MAX_SPLIT_POINTS`` distinct sizes is split at that many evenly spaced places first,
    then each split moved, one at a time, to the best size within one spacing of it.
    """
    s, t, n = _validated(sizes_bytes, times_s, ranks)
    with _numerically():
        return _candidates(s, t, n, max_regimes)


def _candidates(
    s: FloatArray, t: FloatArray, n: FloatArray, max_regimes: int
) -> list[tuple[Regime, ...]]:
    order = np.argsort(s, kind="stable")
    s, t, n = s[order], t[order], n[order]
    distinct, first = np.unique(s, return_index=True)
    bounds = [*first.tolist(), len(s)]  # points of distinct size d: bounds[d]:bounds[d + 1]
    m = len(distinct)
    most = max(1, min(max_regimes, m // MIN_REGIME_SIZES))
    # Where a regime may start or end: between any two sizes, or on a long run (thousands of
    # sizes) between every ~m/MAX_SPLIT_POINTS-th, so the search stays quadratic in a bound.
    cuts = np.unique(np.round(np.linspace(0, m, min(m, MAX_SPLIT_POINTS) + 1)).astype(int))
    fits: dict[tuple[int, int], tuple[Regime, float]] = {}

    def fit(i: int, j: int) -> tuple[Regime, float]:  # distinct sizes i..j-1
        if (i, j) not in fits:
            lo, hi = bounds[i], bounds[j]
            fits[(i, j)] = _regime(s[lo:hi], t[lo:hi], n[lo:hi])
        return fits[(i, j)]

    out: list[tuple[Regime, ...]] = [(fit(0, m)[0],)]
    # best[j]: (cost, ends) of the best split of sizes 0..j-1 into k regimes, ends its regimes'
    # last sizes + 1.
    best: dict[int, tuple[float, tuple[int, ...]]] = {
        j: (fit(0, j)[1], (j,)) for j in cuts.tolist() if j >= MIN_REGIME_SIZES
    }
    step = int(np.ceil(m / MAX_SPLIT_POINTS))
    for _ in range(2, most + 1):
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for j in cuts.tolist():
            options = [
                (cost + fit(i, j)[1], (*ends, j))
                for i, (cost, ends) in best.items()
                if j - i >= MIN_REGIME_SIZES
            ]
            if options:
                nxt[j] = min(options, key=lambda o: o[0])
        best = nxt
        if m in best:
            edges = [0, *best[m][1]]
            if step > 1:  # split only at the coarse places: move each to the best size nearby
                for _ in range(2):
                    for r in range(1, len(edges) - 1):
                        left, right = edges[r - 1], edges[r + 1]
                        lo = max(left + MIN_REGIME_SIZES, edges[r] - step)
                        hi = min(right - MIN_REGIME_SIZES, edges[r] + step)
                        costs = {c: fit(left, c)[1] + fit(c, right)[1] for c in range(lo, hi + 1)}
                        edges[r] = min(costs, key=costs.__getitem__)
            out.append(tuple(fit(i, j)[0] for i, j in itertools.pairwise(edges)))
    return out


def _overall(
    regimes: Sequence[Regime], s: FloatArray, t: FloatArray, n: FloatArray
) -> tuple[float, float]:
    """(median, max) |relative error| of the piecewise prediction over every point."""
    stored = [r.as_dict() for r in regimes]
    err = np.abs(
        np.concatenate(
            [_errors(predict_piecewise(stored, s[n == k], int(k)), t[n == k]) for k in np.unique(n)]
        )
    )
    return float(np.median(err)), float(err.max())


def fit_piecewise(
    sizes_bytes: Sequence[float],
    times_s: Sequence[float],
    ranks: int | Sequence[int],
    max_regimes: int = MAX_REGIMES,
    tolerance: float = REGIME_TOLERANCE,
) -> PiecewiseFit:
    """Fit contiguous size ranges of an nccl-tests curve, each its own one-segment ring (α, U).

    NCCL picks an algorithm and protocol per size (LL, LL128, Simple; ring or tree) and opens
    more channels as sizes grow, each with its own latency and bandwidth, so one α-β ring cannot
    follow the whole curve. Each range is a non-negative linear least squares on relative error
    (``2(n−1)·α + 2(n−1)/n·S/U`` is linear in α and 1/U), the split points the dynamic
    programme of :func:`piecewise_candidates`.

    The number of regimes: the fewest whose every point is within ``tolerance`` (10 %), up to
    ``max_regimes`` (4); if none is, the candidate with the smallest largest error (the fewest
    on a tie). A stated error bound rather than an information criterion: it is what an operator
    reads on the calibration (the largest error), it keeps a clean α-β curve at one regime
    whatever its rounding noise (a likelihood criterion on a near-exact curve rewards splitting
    the rounding), and it adds a regime only where one visibly misses.

    Raises :class:`CalibrationError` unless there are two distinct sizes, each point within
    ``MIN_SIZE_BYTES`` – ``MAX_SIZE_BYTES`` and ``MIN_TIME_US`` – ``MAX_TIME_US`` (:mod:`.nccl`)
    of ``MIN_RANKS`` – ``MAX_RANKS`` ranks, and unless the fit is plausible: every regime's step
    latency at most ``MAX_STEP_LATENCY_US``, the largest sizes' usable throughput at most
    ``MAX_USABLE_GBPS``; a numerical failure of the fit is refused the same way.
    """
    s, t, n = _validated(sizes_bytes, times_s, ranks)
    with _numerically():
        candidates = _candidates(s, t, n, max_regimes)
        scored = [(regimes, *_overall(regimes, s, t, n)) for regimes in candidates]
    within = [c for c in scored if c[2] <= tolerance]
    chosen = within[0] if within else min(scored, key=lambda c: c[2])
    regimes, median, worst = chosen
    if not np.isfinite(regimes[-1].usable_bytes_per_s):
        raise CalibrationError("the largest sizes' times do not grow with size: no bandwidth")
    if not any(r.step_latency_s > 0.0 for r in regimes):
        raise CalibrationError("the times do not resolve a per-step latency")
    for regime in regimes:  # every regime's latency; the throughput the model uses (the last)
        _check_plausible(regime.step_latency_us, regimes[-1].usable_gbps)
    return PiecewiseFit(
        regimes=tuple(regimes),
        ranks=int(n.max()),
        points=len(s),
        median_rel_error=median,
        max_rel_error=worst,
        single=scored[0][0][0],
    )


# --- the harness ----------------------------------------------------------------------------


def read_harness_csv(text: str) -> dict[str, FloatArray | npt.NDArray[np.str_]]:
    """The harness CSV (``#`` comment lines skipped) as one array per column."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    if not rows:
        raise CalibrationError("the harness CSV holds no measurement")
    out: dict[str, FloatArray | npt.NDArray[np.str_]] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        try:
            out[key] = np.array([float(v) for v in values])
        except ValueError:
            out[key] = np.array(values)
    return out


@dataclass(frozen=True)
class Transport:
    """Constants of a transport over the emulated links (fitted by :func:`fit_transport`).

    step_overhead_s: software cost of one ring step (s). rendezvous_rtts: round trips a step
    waits on top of the one-way delay. efficiency: usable share of the line rate. mathis_c: the
    constant of the loss bound. segments: pipelined segments per chunk (gloo: 2). loss_blend:
    the soft minimum's exponent between the loss bound and the line (link.LOSS_BLEND; not
    fitted: chosen over the lossy rows, tests/perfmodel/test_validation.py).
    """

    step_overhead_s: float = 0.8e-3
    rendezvous_rtts: float = 0.5
    efficiency: float = 1.0
    mathis_c: float = link.MATHIS_C
    segments: int = 2
    loss_blend: float = link.LOSS_BLEND


def predict_harness(
    data: Mapping[str, FloatArray | npt.NDArray[np.str_]], transport: Transport
) -> FloatArray:
    """Predicted median step time (s) of every harness row: slowest compute + all-reduce."""
    f = {k: np.asarray(v, dtype=np.float64) for k, v in data.items() if k != "congestion_control"}
    one_way = f["delay_ms"] / 1e3
    usable = link.usable_bytes_per_s(
        f["rate_mbps"] * 1e6 / 8.0,
        transport.efficiency,
        np.inf,
        1.0,
        2.0 * one_way,
        f["loss"],
        f["mtu_bytes"] - 52.0,
        transport.mathis_c,
        transport.loss_blend,
    )
    alpha = link.step_latency_s(one_way, transport.rendezvous_rtts, transport.step_overhead_s)
    comm = link.pipelined_ring_allreduce_s(
        f["size_bytes"], f["ranks"], usable, alpha, transport.segments
    )
    out: FloatArray = f["compute_ms"] / 1e3 * np.maximum(f["slow_factor"], 1.0) + comm
    return out


def relative_errors(
    data: Mapping[str, FloatArray | npt.NDArray[np.str_]], transport: Transport
) -> FloatArray:
    """(predicted − measured) / measured of every harness row."""
    measured = np.asarray(data["step_ms_median"], dtype=np.float64) / 1e3
    return _errors(predict_harness(data, transport), measured)


def fit_transport(
    data: Mapping[str, FloatArray | npt.NDArray[np.str_]],
    mask: npt.NDArray[np.bool_] | None = None,
    segments: int = 2,
    loss_blend: float = link.LOSS_BLEND,
) -> Transport:
    """Fit overhead, rendezvous, efficiency (lossless rows) then Mathis' C (lossy rows).

    Minimizes the sum of squared relative step-time errors on a grid (coordinate passes).
    """
    keep = np.ones(len(data["ranks"]), dtype=bool) if mask is None else mask
    loss = np.asarray(data["loss"], dtype=np.float64)
    lossless = {k: v[keep & (loss == 0)] for k, v in data.items()}
    lossy = {k: v[keep & (loss > 0)] for k, v in data.items()}

    def cost(rows: Mapping[str, FloatArray | npt.NDArray[np.str_]], t: Transport) -> float:
        return float(np.sum(relative_errors(rows, t) ** 2))

    best = Transport(segments=segments, loss_blend=loss_blend)
    grids: dict[str, Iterable[float]] = {
        "step_overhead_s": np.linspace(0.0, 2e-3, 41),
        "rendezvous_rtts": np.linspace(0.0, 1.5, 61),
        "efficiency": np.linspace(0.8, 1.0, 41),
    }
    for _ in range(3):
        for name, grid in grids.items():
            trials = [Transport(**{**asdict(best), name: float(v)}) for v in grid]
            best = min(trials, key=lambda t: cost(lossless, t))
    if len(lossy["ranks"]):
        # A coarse grid, then a fine one around its best (steps of 0.001), so that leaving a
        # row out of the fit can move C (tests/perfmodel/test_validation.py fits out of sample).
        for step in (0.05, 0.001):
            centre = best.mathis_c if step < 0.05 else 3.25
            half = 0.05 if step < 0.05 else 2.75
            grid = np.round(np.arange(centre - half, centre + half + step / 2, step), 3)
            trials = [Transport(**{**asdict(best), "mathis_c": float(c)}) for c in grid]
            best = min(trials, key=lambda t: cost(lossy, t))
    return best
