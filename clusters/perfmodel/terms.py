"""The model's equations, one function each, all vectorized (numpy broadcasting).

Every function takes arrays (or scalars) of any broadcast-compatible shape and returns an array.
Units are in the argument names. Each docstring names the section of docs/model.md ("The
terms") it implements; the public sources are in docs/model.md, "Sources".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import link
from .stragglers import slowdown

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# docs/model.md, "Collectives" and "Sources": light in single-mode fiber, one way.
FIBER_US_PER_KM = 4.9
# docs/model.md, "Sources": NCCL ring tuning uses roughly 8–9 µs base latency plus ~10 µs per
# network hop. A ring all-reduce over n ranks takes 2(n−1) steps, each one hop.
RING_BASE_LATENCY_S = 8.5e-6
NETWORK_HOP_LATENCY_S = 10e-6
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
# Rent: a month is a twelfth of a 365-day year (rent_usd = monthly · 12 · days / 365).
DAYS_PER_YEAR = 365.0


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def gbps_to_bytes_per_s(gbps: ArrayLike) -> FloatArray:
    """Gbit/s (10⁹ bits per second) to bytes per second."""
    out: FloatArray = _f(gbps) * (1e9 / 8.0)
    return out


def one_way_latency_s(route_km: ArrayLike, latency_us: ArrayLike) -> FloatArray:
    """One-way latency (s) of a link: ``route_km · 4.9 µs/km + equipment latency_us``.

    docs/model.md, "Collectives" (4.9 µs per km of fiber).
    """
    out: FloatArray = (_f(route_km) * FIBER_US_PER_KM + _f(latency_us)) * 1e-6
    return out


def link_usable_bytes_per_s(
    bandwidth_gbps: ArrayLike,
    efficiency: ArrayLike,
    window_bytes: ArrayLike,
    streams: ArrayLike,
    rtt_s: ArrayLike,
    loss_rate: ArrayLike = 0.0,
    mss_bytes: ArrayLike = link.DEFAULT_MSS_BYTES,
) -> FloatArray:
    """Usable link throughput (bytes/s): line- or window-bound, blended with the loss bound.

    ``streams`` is the number of TCP flows the link carries at once: in a scenario, the flows
    per connection times the connections the parallelism puts on it (:func:`hop_connections`).
    ``B = min(bandwidth · efficiency, streams · window / RTT)`` and
    ``L = streams · C · MSS / (RTT · √loss)`` combine as the soft minimum
    ``(B^−k + L^−k)^(−1/k)`` (docs/model.md, "Links"; link.py): a flow with at most W bytes in
    flight moves at most W/RTT bytes per second whatever the line rate, and a loss-based TCP
    flow losing a share p of its packets about C·MSS/(RTT·√p) (Mathis' law), less where the two
    bounds are close. An infinite window, zero loss or zero RTT removes the corresponding cap.
    """
    return link.usable_bytes_per_s(
        gbps_to_bytes_per_s(bandwidth_gbps),
        efficiency,
        window_bytes,
        streams,
        rtt_s,
        loss_rate,
        mss_bytes,
        link.MATHIS_C,
    )


def hop_connections(
    sync: ArrayLike, ranks_per_replica: ArrayLike, fewest_site_replicas: ArrayLike
) -> FloatArray:
    """Concurrent connections crossing each inter-site hop (docs/model.md, "Links": flows).

    Every rank holds ``grad_bytes / (TP·PP)``. A flat ring (``sync`` 0) is TP·PP rings, one per
    model-shard position, each crossing every hop once: TP·PP connections. Hierarchical and
    DiLoCo (``sync`` 1, 2) reduce-scatter inside each site first, so every rank of a site holds
    a distinct slice and the inter-site all-reduce runs one ring per slice, in parallel; the
    slices of a site with more replicas are finer and are grouped to match the site with the
    fewest, so the rings number TP·PP × the fewest replicas of an active site.
    """
    rep = _f(ranks_per_replica)
    out: FloatArray = np.where(
        _f(sync) == 0.0, rep, rep * np.maximum(_f(fewest_site_replicas), 1.0)
    )
    return out


def step_latency_s(one_way_s: ArrayLike, rendezvous_rtts: ArrayLike) -> FloatArray:
    """Latency (s) one collective step pays on a link: one way plus rendezvous round trips.

    ``one_way · (1 + 2 · rendezvous_rtts)``, real-valued: a receiver-ready rendezvous (gloo,
    NCCL's socket transport) is 0.5, one round trip per step in all, as measured
    (docs/model.md, "Links").
    """
    return link.step_latency_s(one_way_s, rendezvous_rtts)


def ring_allreduce_s(
    bytes_per_rank: ArrayLike,
    ranks: ArrayLike,
    busbw_bytes_per_s: ArrayLike,
    step_latency: ArrayLike = NETWORK_HOP_LATENCY_S,
    base_latency_s: ArrayLike = RING_BASE_LATENCY_S,
) -> FloatArray:
    """Ring all-reduce time (s): ``base + 2(n−1)·α + 2(n−1)/n · S / B``.

    docs/model.md, "Collectives": n ranks, S bytes per rank, α the per-step latency, B the bus
    bandwidth (a measured nccl-tests busbw plugs straight in). One rank (or none) costs 0.
    """
    n = _f(ranks)
    steps = 2.0 * np.maximum(n - 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bw_term = steps / np.maximum(n, 1.0) * _f(bytes_per_rank) / _f(busbw_bytes_per_s)
    t = _f(base_latency_s) + steps * _f(step_latency) + bw_term
    out: FloatArray = np.where(n > 1.0, t, 0.0)
    return out


def allreduce_s(
    bytes_per_rank: ArrayLike,
    ranks: ArrayLike,
    busbw_bytes_per_s: ArrayLike,
    step_latency: ArrayLike = NETWORK_HOP_LATENCY_S,
    base_latency_s: ArrayLike = RING_BASE_LATENCY_S,
) -> FloatArray:
    """All-reduce time (s): the faster of the ring and the (double binary) tree.

    Tree: ``base + 2·⌈log₂ n⌉·α + 2·S/B``. The ring's ``2(n−1)`` latencies dominate at large n
    (10⁶ ranks at 10 µs: 20 s), the tree's depth does not; for bandwidth-bound sizes the ring's
    ``2(n−1)/n`` is the smaller factor. NCCL's tuner picks between them the same way
    (docs/model.md, "Links").
    """
    ring = ring_allreduce_s(bytes_per_rank, ranks, busbw_bytes_per_s, step_latency, base_latency_s)
    tree = _f(base_latency_s) + link.tree_allreduce_s(
        bytes_per_rank, ranks, busbw_bytes_per_s, step_latency
    )
    out: FloatArray = np.where(_f(ranks) > 1.0, np.minimum(ring, tree), 0.0)
    return out


def hierarchical_inter_site_s(
    grad_bytes: ArrayLike,
    ring_ranks: ArrayLike,
    usable_bytes_per_s: ArrayLike,
    step_latency: ArrayLike,
) -> FloatArray:
    """Inter-site all-reduce time (s): ``2(k−1)/k · bytes / U + 2(k−1) · step latency``.

    docs/model.md, "Collectives" (hierarchical): after the reduce-scatter inside each
    site, the k sites run a ring all-reduce of the full gradient (the shards travel in parallel
    but share the site's links), so each inter-site link carries 2(k−1)/k · bytes. U is the
    usable throughput of the slowest ring hop (after efficiency and the window cap).

    The worked example of docs/model.md, "Where the model departs from its sources" (175B,
    350 GB, DP 48 across 3 sites) gives 0.95 s at 6.4 Tbit/s; those figures are reproduced with
    k = 48 (the factor 2·47/48), i.e. the volume a ring over all 48 data-parallel ranks puts on
    each link, which is what a flat ring does. With k = 3 sites the same term is
    2·2/3 / (2·47/48) = 0.68 times smaller.
    """
    k = _f(ring_ranks)
    steps = 2.0 * np.maximum(k - 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bw_term = np.where(
            steps > 0.0, steps / np.maximum(k, 1.0) * _f(grad_bytes) / _f(usable_bytes_per_s), 0.0
        )
    out: FloatArray = np.where(k > 1.0, bw_term + steps * _f(step_latency), 0.0)
    return out


# docs/model.md, "Compute": kernel MFU grows with the per-GPU GEMM width w = hidden / TP as
# w / (w + w₀). w₀ = 700 is our fit to Megatron's A100 iteration times (22B–1T, w 768–3,200);
# the catalog's kernel MFU is quoted at the reference width 2,048 (Llama 3 405B: 16,384 / TP 8).
GEMM_HALF_WIDTH = 700.0
GEMM_REFERENCE_WIDTH = 2048.0


def kernel_efficiency(hidden_size: ArrayLike, tensor_parallel: ArrayLike) -> FloatArray:
    """Kernel MFU relative to the catalog's reference GEMM width (dimensionless, > 0).

    ``(w / (w + w₀)) / (w_ref / (w_ref + w₀))`` with w = hidden / TP; an unknown hidden size
    (NaN) gives 1. Narrow GEMMs (small models, wide TP) run further below peak.
    """
    w = _f(hidden_size) / _f(tensor_parallel)
    ref = GEMM_REFERENCE_WIDTH / (GEMM_REFERENCE_WIDTH + GEMM_HALF_WIDTH)
    out: FloatArray = np.where(np.isnan(w), 1.0, w / (w + GEMM_HALF_WIDTH) / ref)
    return out


def pipeline_factor(
    pipeline_parallel: ArrayLike,
    microbatches: ArrayLike,
    interleave: ArrayLike = 1.0,
    stage_imbalance: ArrayLike = 0.0,
) -> FloatArray:
    """Pipeline time over ideal compute: ``1 + δ + (pp − 1) / (v · m)`` (dimensionless).

    docs/model.md, "Pipeline": ``T_pp = (m−1)·max_s t_s + Σ_s t_s``. With pp balanced
    stages of per-micro-batch time t and m micro-batches that is ``(m + pp − 1)·t`` against the
    ideal ``m·t``. With v interleaved virtual stages per rank the fill/drain chunks are t/v
    (Megatron's interleaved schedule), giving the general form; v = 1 is the plain formula.
    ``stage_imbalance`` δ: one stage takes ``(1 + δ)·t`` (e.g. the last stage holding the
    output layer and the loss); then ``T_pp = (m−1)(1+δ)t + (pp+δ)t``, i.e. ``+δ`` on the
    factor (pp > 1 only; one stage has nobody to be out of balance with).
    """
    pp = _f(pipeline_parallel)
    out: FloatArray = (
        1.0
        + np.where(pp > 1.0, _f(stage_imbalance), 0.0)
        + (pp - 1.0) / (_f(interleave) * _f(microbatches))
    )
    return out


def straggler_factor(
    jitter_cv: ArrayLike,
    workers: ArrayLike,
    slow_worker_fraction: ArrayLike = 0.0,
    slow_worker_slowdown: ArrayLike = 1.0,
    load_imbalance_cv: ArrayLike = 0.0,
    replicas: ArrayLike = 1.0,
) -> FloatArray:
    """Expected slowdown of a synchronous step over N workers (dimensionless).

    docs/model.md, "Stragglers": exact ``1 + cv·E[max of N normals]`` for iid jitter, plus
    persistent slow workers and data-parallel load imbalance (stragglers.slowdown). The closed
    form ``1 + cv·sqrt(2 ln N)`` is only an upper bound (stragglers.closed_form_factor).
    """
    return slowdown(
        jitter_cv,
        workers,
        slow_worker_fraction,
        slow_worker_slowdown,
        load_imbalance_cv,
        replicas,
    )


def exposed_s(comm_s: ArrayLike, overlap_s: ArrayLike) -> FloatArray:
    """Communication left on the critical path (s): ``max(0, comm − overlap window)``.

    docs/model.md, "Collectives" (overlap: only about the last micro-batch's backward pass can
    hide the data-parallel all-reduce).
    """
    out: FloatArray = np.maximum(_f(comm_s) - _f(overlap_s), 0.0)
    return out


def goodput(cluster_mtbf_s: ArrayLike, restart_cost_s: ArrayLike) -> FloatArray:
    """Fraction of wall time that trains: ``M / (M + r)`` (dimensionless).

    M is the cluster's mean time between interruptions (per-GPU MTBF / N), r the mean wall time
    lost per interruption (detection, restart, reload, redoing work since the last checkpoint).
    Each interruption costs r, so in a long window the training share is M/(M + r) — the
    first-order Young/Daly accounting with the checkpoint overhead folded into r. Anchor:
    Llama 3 on 16K H100s had one interruption every ~3 h and > 90 % effective time
    (docs/model.md, "Sources"), i.e. r below ~20 min.
    """
    m = _f(cluster_mtbf_s)
    r = _f(restart_cost_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = m / (m + r)
    out: FloatArray = np.where(np.isfinite(m), g, 1.0)
    return out


def usd_per_useful_flop(
    reference_price_per_gpu_hour_usd: ArrayLike,
    reference_peak_tflops: ArrayLike,
    reference_mfu: ArrayLike,
) -> FloatArray:
    """Price of one useful FLOP on the reference cluster (USD/FLOP).

    docs/model.md, "Value, placements and break-evens": what the same useful compute would cost
    to rent on a reference homogeneous cluster: ``price / (peak · 10¹² · MFU · 3600)``.
    """
    denom = _f(reference_peak_tflops) * 1e12 * _f(reference_mfu) * SECONDS_PER_HOUR
    out: FloatArray = _f(reference_price_per_gpu_hour_usd) / denom
    return out


def internal_value_usd(
    useful_flops_per_s: ArrayLike,
    horizon_days: ArrayLike,
    usd_per_flop: ArrayLike,
    scarcity_multiplier: ArrayLike,
) -> FloatArray:
    """Internal value (USD) = useful FLOP/s · horizon · $/useful FLOP · scarcity multiplier.

    docs/model.md, "Value, placements and break-evens". Linear in the scarcity multiplier.
    """
    out: FloatArray = (
        _f(useful_flops_per_s)
        * _f(horizon_days)
        * SECONDS_PER_DAY
        * _f(usd_per_flop)
        * _f(scarcity_multiplier)
    )
    return out


def rent_usd(rent_per_month_usd: ArrayLike, horizon_days: ArrayLike) -> FloatArray:
    """Rent forgone over the horizon (USD): ``rent_per_month · 12 · horizon_days / 365``."""
    out: FloatArray = _f(rent_per_month_usd) * 12.0 * _f(horizon_days) / DAYS_PER_YEAR
    return out
