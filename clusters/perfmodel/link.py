"""The link term: what one collective step costs on a long link (docs/model.md, "Links").

Vectorized like terms.py (numpy broadcasting, units in the argument names). Each law was chosen
against the harness's measurements of a real gloo all-reduce over emulated links
(bench/data/allreduce_measurements.csv, checked by tests/perfmodel/test_validation.py):

* **Per-step latency** ``one_way · (1 + 2·rendezvous_rtts) + step_overhead``: a rendezvous
  transport sends a chunk only once the receiver has said it is ready, so a step costs the
  ready notice's one-way trip plus the data's: one round trip (``rendezvous_rtts`` = 0.5).
  Measured: 1.0 RTT per step for small messages, from 1 to 20 ms one way, 2 to 4 ranks.
* **Throughput**: the lesser of the line-bound ``line · efficiency`` and the window-bound
  ``streams · window / RTT`` (a flow has at most one window in flight per round trip), blended
  with the loss bound ``streams · C · MSS / (RTT · √loss)`` (Mathis et al.'s TCP response
  function) as a soft minimum ``(B^−k + L^−k)^(−1/k)``, k = :data:`LOSS_BLEND`: a lossy
  collective's short bursts never reach the steady state in which the hard minimum holds,
  and the measured steps sit between the minimum (k → ∞) and the two costs added (k = 1).
* **Pipelined ring**: gloo (and NCCL) split each rank's chunk into ``segments`` that travel one
  behind the other, so a step's latency overlaps the previous segment's transfer. The
  all-reduce time is the larger of a latency-bound and a bandwidth-bound schedule
  (:func:`pipelined_ring_allreduce_s`); with one segment it is the classic α-β ring
  ``2(n−1)·(α + S/(n·U))``, and with two ranks both schedules give ``2α + S/U`` (latency and
  transfer add, as measured).
* **Tree**: a (double) binary tree pays ``2·⌈log₂ n⌉`` latencies instead of ``2(n−1)``;
  :func:`allreduce_s` takes the faster of ring and tree, as NCCL's tuner does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# Mathis, Semke, Mahdavi, Ott (1997): throughput ≤ C · MSS / (RTT · √p). The textbook
# C = √(3/2) = 1.22 assumes periodic loss and no delayed ACKs (√(3/4) = 0.87 with them); the
# harness measures 0.98 (Reno, random loss, the medians over six runs of its lossy points;
# tests/perfmodel/test_validation.py refits it), which the model takes: the textbook figure
# made every lossy link a quarter faster than measured.
MATHIS_C = 0.98
# The soft minimum's exponent between the loss bound and the line/window bound, chosen on the
# harness's lossy measurements (docs/model.md, "Links"; tests/perfmodel/test_validation.py
# prints the hard minimum and k = 1, 1.5, 2, 3 side by side). Without loss it changes nothing.
LOSS_BLEND = 2.0
# A 1500-byte Ethernet MTU less 40 bytes of IP/TCP headers and 12 of TCP timestamps.
DEFAULT_MSS_BYTES = 1448.0


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def step_latency_s(
    one_way_s: ArrayLike, rendezvous_rtts: ArrayLike, step_overhead_s: ArrayLike = 0.0
) -> FloatArray:
    """Latency (s) of one collective step: ``one_way · (1 + 2·rendezvous_rtts) + overhead``.

    ``rendezvous_rtts`` is real-valued: 0 for a transport that sends eagerly (one-way delay
    only), 0.5 for a receiver-ready rendezvous (one round trip per step in total, measured for
    gloo), an integer for the handshakes of older settings (``handshake_rtts``).
    """
    out: FloatArray = _f(one_way_s) * (1.0 + 2.0 * _f(rendezvous_rtts)) + _f(step_overhead_s)
    return out


def bounds_bytes_per_s(
    line_bytes_per_s: ArrayLike,
    efficiency: ArrayLike,
    window_bytes: ArrayLike,
    streams: ArrayLike,
    rtt_s: ArrayLike,
    loss_rate: ArrayLike = 0.0,
    mss_bytes: ArrayLike = DEFAULT_MSS_BYTES,
    mathis_c: ArrayLike = MATHIS_C,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The three bounds (bytes/s) of a link carrying ``streams`` parallel TCP flows: the line
    ``line · efficiency``, the window ``streams · window / RTT`` and the loss bound
    ``streams · C · MSS / (RTT · √loss)``; an infinite window, a zero loss rate or a zero RTT
    makes its bound infinite. :func:`usable_bytes_per_s` combines them."""
    line = _f(line_bytes_per_s) * _f(efficiency)
    rtt = _f(rtt_s)
    streams_ = _f(streams)
    loss = _f(loss_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        windowed = streams_ * _f(window_bytes) / rtt
        lossy = streams_ * _f(mathis_c) * _f(mss_bytes) / (rtt * np.sqrt(loss))
    windowed = np.where(np.isnan(windowed), np.inf, windowed)
    lossy = np.where(np.isnan(lossy) | (loss <= 0.0), np.inf, lossy)
    return line, windowed, lossy


def usable_bytes_per_s(
    line_bytes_per_s: ArrayLike,
    efficiency: ArrayLike,
    window_bytes: ArrayLike,
    streams: ArrayLike,
    rtt_s: ArrayLike,
    loss_rate: ArrayLike = 0.0,
    mss_bytes: ArrayLike = DEFAULT_MSS_BYTES,
    mathis_c: ArrayLike = MATHIS_C,
    loss_blend: ArrayLike = LOSS_BLEND,
) -> FloatArray:
    """Usable throughput (bytes/s) of a link carrying ``streams`` parallel TCP flows (all of
    them: a scenario passes flows per connection × connections, model.py).

    ``B = min(line · efficiency, streams · window / RTT)`` blended with the loss bound
    ``L = streams · C · MSS / (RTT · √loss)`` as ``(B^−k + L^−k)^(−1/k)``, k = ``loss_blend``
    (module docstring; the bounds: :func:`bounds_bytes_per_s`). Without loss the result is
    exactly ``B``.
    """
    line, windowed, lossy = bounds_bytes_per_s(
        line_bytes_per_s, efficiency, window_bytes, streams, rtt_s, loss_rate, mss_bytes, mathis_c
    )
    bound = np.minimum(line, windowed)
    k = _f(loss_blend)
    low, high = np.minimum(bound, lossy), np.maximum(bound, lossy)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Written around the lesser bound so that no power overflows: m · (1 + (m/M)^k)^(−1/k).
        blended = low * (1.0 + (low / high) ** k) ** (-1.0 / k)
    out: FloatArray = np.where(np.isinf(high) | (low <= 0.0), low, blended)
    return out


def pipelined_ring_allreduce_s(
    bytes_per_rank: ArrayLike,
    ranks: ArrayLike,
    usable_bytes_per_s: ArrayLike,
    step_latency: ArrayLike,
    segments: ArrayLike = 1.0,
) -> FloatArray:
    """Ring all-reduce time (s) with each chunk cut into ``segments`` pipelined pieces.

    A ring all-reduce of S bytes over n ranks is a reduce-scatter then an all-gather, each
    ``n−1`` steps moving a chunk of S/n bytes to the next rank. With the chunk cut into p
    segments and p of them in flight (gloo: p = 2), segment j can leave once segment j−p has
    arrived (its data) and the link has carried segment j−1 (its turn). Each phase then ends at
    the larger of

    * latency-bound: ``(n−1)·α + (n+p−2) · S/(p·n·U)`` — every step pays its latency α, and
    * bandwidth-bound: ``α + (n−1)/n · S/U`` — the link never idles after the first segment,

    so the all-reduce is ``2·max(...)``. p = 1 gives the classic ``2(n−1)·(α + S/(n·U))``; n = 2
    gives ``2α + S/U`` for any p. One rank (or none) costs 0.
    """
    n = _f(ranks)
    p = np.maximum(_f(segments), 1.0)
    s = _f(bytes_per_rank)
    alpha = _f(step_latency)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = s / _f(usable_bytes_per_s)  # S/U
        nn = np.maximum(n, 1.0)
        latency_bound = (nn - 1.0) * alpha + (nn + p - 2.0) * beta / (p * nn)
        bandwidth_bound = alpha + (nn - 1.0) / nn * beta
    t = 2.0 * np.maximum(latency_bound, bandwidth_bound)
    out: FloatArray = np.where(n > 1.0, t, 0.0)
    return out


def tree_allreduce_s(
    bytes_per_rank: ArrayLike,
    ranks: ArrayLike,
    usable_bytes_per_s: ArrayLike,
    step_latency: ArrayLike,
) -> FloatArray:
    """Double-binary-tree all-reduce time (s): ``2·⌈log₂ n⌉·α + 2·S/U``.

    A reduce up a tree then a broadcast down it, pipelined, so every byte crosses a link about
    twice and the latency grows with the tree's depth, not the rank count (NCCL's tree
    algorithm; not measured by the harness, whose gloo ring has no tree).
    """
    n = _f(ranks)
    depth = np.ceil(np.log2(np.maximum(n, 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = 2.0 * depth * _f(step_latency) + 2.0 * _f(bytes_per_rank) / _f(usable_bytes_per_s)
    out: FloatArray = np.where(n > 1.0, t, 0.0)
    return out


def allreduce_s(
    bytes_per_rank: ArrayLike,
    ranks: ArrayLike,
    usable_bytes_per_s: ArrayLike,
    step_latency: ArrayLike,
    segments: ArrayLike = 1.0,
) -> FloatArray:
    """The faster of the pipelined ring and the tree (s), as NCCL's tuner picks per size."""
    ring = pipelined_ring_allreduce_s(
        bytes_per_rank, ranks, usable_bytes_per_s, step_latency, segments
    )
    tree = tree_allreduce_s(bytes_per_rank, ranks, usable_bytes_per_s, step_latency)
    out: FloatArray = np.minimum(ring, tree)
    return out
