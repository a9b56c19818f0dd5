"""Fit link and collective parameters to measured all-reduce times (docs/model.md, "Calibration").

Two kinds of measurement feed it:

* nccl-tests ``all_reduce_perf`` output (:mod:`.nccl`): time per message size on one cluster or
  across one link, ``n`` ranks;
* the harness's CSV (bench/data/allreduce_measurements.csv): a real gloo all-reduce over
  emulated links of known delay, rate and loss.

:func:`fit_allreduce` fits the per-step latency α and the usable throughput U of
:func:`.link.pipelined_ring_allreduce_s` to (size, ranks, time) points by minimizing the
largest of the squared relative errors' sum on a log grid refined three times (no SciPy); with
``segments`` = 1 this is the classic α-β ring. :func:`fit_transport` fits the four transport
constants of the harness (per-step software overhead, rendezvous round trips, efficiency,
Mathis' C) so that :func:`predict_harness` reproduces the whole grid. Pure: numpy only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from . import link
from .nccl import AllReduceRow

FloatArray = npt.NDArray[np.float64]


class CalibrationError(ValueError):
    """The measurements cannot support a fit (too few points, non-positive times...)."""


@dataclass(frozen=True)
class AllReduceFit:
    """α-β parameters of an all-reduce and how well they reproduce the points they came from."""

    step_latency_s: float
    usable_bytes_per_s: float
    ranks: int
    segments: int
    points: int
    median_rel_error: float
    max_rel_error: float

    @property
    def step_latency_us(self) -> float:
        return self.step_latency_s * 1e6

    @property
    def usable_gbps(self) -> float:
        return self.usable_bytes_per_s * 8.0 / 1e9

    def as_dict(self) -> dict[str, float | int]:
        return {
            **asdict(self),
            "step_latency_us": self.step_latency_us,
            "usable_gbps": self.usable_gbps,
        }


def _errors(predicted: FloatArray, measured: FloatArray) -> FloatArray:
    out: FloatArray = (predicted - measured) / measured
    return out


def fit_allreduce(
    sizes_bytes: Sequence[float],
    times_s: Sequence[float],
    ranks: int | Sequence[int],
    segments: int = 1,
) -> AllReduceFit:
    """Fit (α, U) of the pipelined ring to measured all-reduce times (least relative squares).

    ``ranks`` is one count for every point or one per point. Needs at least two distinct sizes
    and positive times; raises :class:`CalibrationError` otherwise.
    """
    s = np.asarray(sizes_bytes, dtype=np.float64)
    t = np.asarray(times_s, dtype=np.float64)
    n = np.broadcast_to(np.asarray(ranks, dtype=np.float64), s.shape)
    if s.ndim != 1 or s.shape != t.shape or len(s) < 2:
        raise CalibrationError("need at least two (size, time) points of equal length")
    if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(s > 0)):
        raise CalibrationError("sizes and times must be positive and finite")
    if len(np.unique(s)) < 2:
        raise CalibrationError("need at least two distinct message sizes")
    if np.any(n < 2):
        raise CalibrationError("an all-reduce needs at least two ranks")
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


def fit_nccl(rows: Sequence[AllReduceRow], ranks: int, min_bytes: int = 0) -> AllReduceFit:
    """Fit an ``all_reduce_perf`` run (out-of-place times) of ``ranks`` ranks.

    NCCL pipelines many slices per chunk, so the classic α-β ring (one segment) is fitted;
    sizes below ``min_bytes`` can be left out (the smallest sizes measure launch overheads).
    """
    chosen = [r for r in rows if r.size_bytes >= max(min_bytes, 1)]
    return fit_allreduce(
        [r.size_bytes for r in chosen], [r.time_us * 1e-6 for r in chosen], ranks, segments=1
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
