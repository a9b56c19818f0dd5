"""Vectorized evaluation of one synchronous training step and its value.

A batch of scenarios that share a topology (which pool sits at which site, which sites each link
joins) is a set of arrays: per-scenario scalars of the batch shape, per-pool inputs of shape
``batch + (P,)`` and per-link inputs of shape ``batch + (L,)``. :func:`evaluate` broadcasts them
together and returns every term as an array of the batch shape. A pool with ``gpus = 0`` takes
no part (that is how placements switch pools off).

The step (sections of docs/model.md, "The terms", in brackets):

1. Replicas. A data-parallel replica is TP·PP GPUs; a pool holds ``floor(gpus / (TP·PP))``.
2. Split [Compute]. Each replica takes a share of the global batch: equal (the step
   waits for the slowest pool) or proportional to speed, memory-capped (below).
3. Compute [Compute, Pipeline]. Replica time = FLOPs share / (TP·PP · peak · MFU), times the
   pipeline factor ``1 + δ + (PP−1)/(v·m)`` (δ the stage imbalance), times the straggler
   factor (exact ``1 + cv·E[M_N]``, persistent slow workers, load imbalance; stragglers.py);
   the step's compute is the max over pools.
4. Communication [Collectives]. Inside a site: ring all-reduce over the site's replicas of
   ``grad_bytes / (TP·PP)`` per rank at the slowest pool's bus bandwidth. Across sites:
   flat ring (one ring over every replica, each step paced by the slowest hop, so the
   inter-site hop carries ``2(D−1)/D · grad_bytes``) or hierarchical (reduce-scatter in each
   site, ``2(k−1)/k · grad_bytes`` over the slowest inter-site hop, all-gather), or DiLoCo
   (hierarchical inter-site cost divided by H). Links deliver
   ``min(bw·eff, flows·window/RTT, Mathis loss bound × flows)`` and pay one way plus rendezvous
   round trips per collective step, where flows = streams × the concurrent connections the
   parallelism puts on the hop: TP·PP for a flat ring (one ring per model-shard position),
   TP·PP × the fewest replicas of an active site for hierarchical and DiLoCo (one ring per
   slice left by the reduce-scatter inside each site), spread evenly over the hop's links.
5. Step = compute + ``max(0, comm − overlap)``; goodput ``M/(M+r)``; DiLoCo quality penalty.
6. Value = useful FLOP/s × horizon × reference $/useful FLOP × scarcity; rent; net.

Memory cap of the proportional split (our rule, documented in SCHEMA.md): a replica's token
share is bounded by the activation memory its micro-batches may use. The workload's
``memory_fill`` says how much of the smallest-HBM pool's memory the equal split fills (default
0.5), so a pool with ``hbm_gb`` may take at most ``hbm_gb / (min hbm_gb · memory_fill)`` times
the equal share. The split is the speed-proportional one water-filled under those caps.

Stragglers across heterogeneous pools: the step waits for ``max_p t_p·(1 + cv_p·E[M_N])``
with N the GPUs in the synchronous group (for DiLoCo, the largest site, since inner steps only
synchronize within a site). Using the whole group's N for every pool slightly over-states the
pools that are not on the critical path; the critical pool is right.

Site ring order: sites are visited in scenario order (order of first appearance among the
pools), skipping sites with no active pool; each hop uses all direct links between the two
sites (throughput summed, latency of the slowest). A hop with no link makes the inter-site
collective impossible (infinite step time, zero value).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from . import terms
from .scenario import Scenario

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SYNC_CODES = {"flat_ring": 0.0, "hierarchical": 1.0, "diloco": 2.0}
SPLIT_CODES = {"equal": 0.0, "proportional": 1.0}

SCALAR_FIELDS = (
    "flops_per_step",
    "grad_bytes",
    "tensor_parallel",
    "pipeline_parallel",
    "microbatches",
    "pipeline_interleave",
    "overlap_s",
    "sync",
    "diloco_inner_steps",
    "diloco_quality_penalty",
    "batch_split",
    "memory_fill",
    "stage_imbalance",
    "load_imbalance_cv",
    "slow_worker_fraction",
    "slow_worker_slowdown",
    "hidden_size",
    "restart_cost_s",
    "usd_per_flop",
    "scarcity_multiplier",
    "rent_per_month_usd",
    "horizon_days",
)
POOL_FIELDS = ("gpus", "peak_tflops", "mfu", "hbm_gb", "busbw_gbps", "jitter_cv", "mtbf_hours")
LINK_FIELDS = (
    "bandwidth_gbps",
    "route_km",
    "efficiency",
    "latency_us",
    "window_bytes",
    "streams",
    "rendezvous_rtts",
    "loss_rate",
    "mss_bytes",
    "step_latency_us",
    "usable_gbps",
)


@dataclass(frozen=True)
class Topology:
    """The shape shared by a batch: pool → site index, link endpoints, number of sites."""

    pool_site: tuple[int, ...]
    link_a: tuple[int, ...]
    link_b: tuple[int, ...]
    n_sites: int


@dataclass(frozen=True)
class Inputs:
    """Numeric model inputs as arrays (see module docstring for shapes).

    Scalars: flops_per_step (FLOP), grad_bytes (bytes), tensor_parallel, pipeline_parallel,
    microbatches, pipeline_interleave (counts), overlap_s (s; NaN → derived), sync (0 flat
    ring, 1 hierarchical, 2 DiLoCo), diloco_inner_steps, diloco_quality_penalty (0–1),
    batch_split (0 equal, 1 proportional), memory_fill (0–1], stage_imbalance (≥ 0),
    load_imbalance_cv (≥ 0), slow_worker_fraction (0–1), slow_worker_slowdown (≥ 1),
    hidden_size (NaN → reference kernel efficiency), restart_cost_s (s),
    usd_per_flop (USD per useful FLOP on the reference cluster), scarcity_multiplier,
    rent_per_month_usd, horizon_days.
    Pools: gpus, peak_tflops, mfu, hbm_gb, busbw_gbps (min of fabric and scale-out, Gbit/s),
    jitter_cv, mtbf_hours. Links: bandwidth_gbps, route_km, efficiency, latency_us,
    window_bytes (inf → no cap), streams, rendezvous_rtts (real), loss_rate, mss_bytes,
    step_latency_us and usable_gbps (NaN → derived; a calibration's measured values otherwise).
    """

    flops_per_step: FloatArray
    grad_bytes: FloatArray
    tensor_parallel: FloatArray
    pipeline_parallel: FloatArray
    microbatches: FloatArray
    pipeline_interleave: FloatArray
    overlap_s: FloatArray
    sync: FloatArray
    diloco_inner_steps: FloatArray
    diloco_quality_penalty: FloatArray
    batch_split: FloatArray
    memory_fill: FloatArray
    stage_imbalance: FloatArray
    load_imbalance_cv: FloatArray
    slow_worker_fraction: FloatArray
    slow_worker_slowdown: FloatArray
    hidden_size: FloatArray
    restart_cost_s: FloatArray
    usd_per_flop: FloatArray
    scarcity_multiplier: FloatArray
    rent_per_month_usd: FloatArray
    horizon_days: FloatArray
    gpus: FloatArray
    peak_tflops: FloatArray
    mfu: FloatArray
    hbm_gb: FloatArray
    busbw_gbps: FloatArray
    jitter_cv: FloatArray
    mtbf_hours: FloatArray
    bandwidth_gbps: FloatArray
    route_km: FloatArray
    efficiency: FloatArray
    latency_us: FloatArray
    window_bytes: FloatArray
    streams: FloatArray
    rendezvous_rtts: FloatArray
    loss_rate: FloatArray
    mss_bytes: FloatArray
    step_latency_us: FloatArray
    usable_gbps: FloatArray

    def replace(self, **changes: Any) -> Inputs:
        """A copy with some arrays replaced (values converted to float64 arrays)."""
        return replace(self, **{k: np.asarray(v, dtype=np.float64) for k, v in changes.items()})

    def batch_shape(self) -> tuple[int, ...]:
        """The broadcast batch shape of all inputs."""
        shapes = [getattr(self, n).shape for n in SCALAR_FIELDS]
        shapes += [getattr(self, n).shape[:-1] for n in POOL_FIELDS + LINK_FIELDS]
        return tuple(np.broadcast_shapes(*shapes))

    def take(self, index: int) -> Inputs:
        """Scenario ``index`` of a 1-D batch, as 0-d scalars and 1-D pool/link arrays."""
        shape = self.batch_shape()
        out: dict[str, FloatArray] = {}
        for f in fields(self):
            arr = getattr(self, f.name)
            tail = () if f.name in SCALAR_FIELDS else arr.shape[-1:]
            out[f.name] = np.array(np.broadcast_to(arr, shape + tail)[index])
        return Inputs(**out)


@dataclass(frozen=True)
class Outputs:
    """Every term of the evaluation, arrays of the batch shape.

    Times in seconds, throughput in FLOP/s, money in USD. ``split_loss`` is the compute lost to
    the split (1 − perfectly balanced time / actual, before pipeline and stragglers);
    ``slowest_pool`` is the index of the pool that sets the compute time;
    ``hop_connections`` the concurrent connections crossing each inter-site hop (0 on one site).
    """

    replicas: FloatArray
    gpus_used: FloatArray
    sites_used: FloatArray
    compute_ideal_s: FloatArray
    compute_equal_s: FloatArray
    compute_proportional_s: FloatArray
    pipeline_factor: FloatArray
    straggler_factor: FloatArray
    compute_s: FloatArray
    intra_site_s: FloatArray
    inter_site_s: FloatArray
    comm_s: FloatArray
    overlap_s: FloatArray
    exposed_comm_s: FloatArray
    step_time_s: FloatArray
    goodput: FloatArray
    quality: FloatArray
    useful_flops_per_s: FloatArray
    capacity_flops_per_s: FloatArray
    efficiency: FloatArray
    achieved_tflops_per_gpu: FloatArray
    slowest_hop_bytes_per_s: FloatArray
    slowest_hop_latency_s: FloatArray
    hop_connections: FloatArray
    split_loss: FloatArray
    slowest_pool: npt.NDArray[np.int64]
    cluster_mtbf_s: FloatArray
    internal_value_usd: FloatArray
    rent_usd: FloatArray
    net_usd: FloatArray
    reclaim: BoolArray

    def take(self, index: Any) -> dict[str, float]:
        """One scenario's figures as plain floats."""
        return {f.name: float(getattr(self, f.name)[index]) for f in fields(self)}


def topology_of(scenario: Scenario) -> Topology:
    """The batch shape of a scenario: pool sites and link endpoints as site indices."""
    sites = {s: i for i, s in enumerate(scenario.sites)}
    return Topology(
        pool_site=tuple(sites[p.site] for p in scenario.pools),
        link_a=tuple(sites[lk.a] for lk in scenario.links),
        link_b=tuple(sites[lk.b] for lk in scenario.links),
        n_sites=len(sites),
    )


def inputs_of(scenario: Scenario) -> Inputs:
    """A scenario's numbers as 0-d scalars and 1-D (pool, link) arrays."""
    w = scenario.workload
    e = scenario.economics
    ref = scenario.reference
    ref_price = (
        e.reference_price_per_gpu_hour_usd
        if e.reference_price_per_gpu_hour_usd is not None
        else ref.price_per_gpu_hour_usd
    )
    ref_mfu = e.reference_mfu if e.reference_mfu is not None else ref.mfu
    accels = [scenario.accelerators[p.accelerator] for p in scenario.pools]

    def arr(values: list[float]) -> FloatArray:
        return np.asarray(values, dtype=np.float64).reshape(len(values))

    return Inputs(
        flops_per_step=np.float64(w.step_flops) * np.ones(()),
        grad_bytes=np.asarray(w.step_grad_bytes, dtype=np.float64),
        tensor_parallel=np.asarray(w.tensor_parallel, dtype=np.float64),
        pipeline_parallel=np.asarray(w.pipeline_parallel, dtype=np.float64),
        microbatches=np.asarray(w.microbatches, dtype=np.float64),
        pipeline_interleave=np.asarray(w.pipeline_interleave, dtype=np.float64),
        overlap_s=np.asarray(np.nan if w.overlap_s is None else w.overlap_s, dtype=np.float64),
        sync=np.asarray(SYNC_CODES[w.sync], dtype=np.float64),
        diloco_inner_steps=np.asarray(w.diloco_inner_steps, dtype=np.float64),
        diloco_quality_penalty=np.asarray(w.diloco_quality_penalty, dtype=np.float64),
        batch_split=np.asarray(SPLIT_CODES[w.batch_split], dtype=np.float64),
        memory_fill=np.asarray(w.memory_fill, dtype=np.float64),
        stage_imbalance=np.asarray(w.stage_imbalance, dtype=np.float64),
        load_imbalance_cv=np.asarray(w.load_imbalance_cv, dtype=np.float64),
        slow_worker_fraction=np.asarray(w.slow_worker_fraction, dtype=np.float64),
        slow_worker_slowdown=np.asarray(w.slow_worker_slowdown, dtype=np.float64),
        hidden_size=np.asarray(np.nan if w.hidden_size is None else w.hidden_size, dtype=float),
        restart_cost_s=np.asarray(e.restart_cost_s, dtype=np.float64),
        usd_per_flop=np.asarray(
            terms.usd_per_useful_flop(ref_price, ref.peak_tflops, ref_mfu), dtype=np.float64
        ),
        scarcity_multiplier=np.asarray(e.scarcity_multiplier, dtype=np.float64),
        rent_per_month_usd=np.asarray(e.rent_per_month_usd, dtype=np.float64),
        horizon_days=np.asarray(e.horizon_days, dtype=np.float64),
        gpus=arr([float(p.gpus) for p in scenario.pools]),
        peak_tflops=arr([a.peak_tflops for a in accels]),
        mfu=arr([a.mfu for a in accels]),
        hbm_gb=arr([a.hbm_gb for a in accels]),
        busbw_gbps=arr(
            [
                min(p.fabric_gbps_per_gpu, a.scaleout_gbps)
                for p, a in zip(scenario.pools, accels, strict=True)
            ]
        ),
        jitter_cv=arr([a.jitter_cv for a in accels]),
        mtbf_hours=arr([a.mtbf_hours for a in accels]),
        bandwidth_gbps=arr([lk.bandwidth_gbps for lk in scenario.links]),
        route_km=arr([lk.route_km for lk in scenario.links]),
        efficiency=arr([lk.efficiency for lk in scenario.links]),
        latency_us=arr([lk.latency_us for lk in scenario.links]),
        window_bytes=arr(
            [np.inf if lk.window_bytes is None else lk.window_bytes for lk in scenario.links]
        ),
        streams=arr([float(lk.streams) for lk in scenario.links]),
        rendezvous_rtts=arr([lk.rendezvous_rtts for lk in scenario.links]),
        loss_rate=arr([lk.loss_rate for lk in scenario.links]),
        mss_bytes=arr([lk.mss_bytes for lk in scenario.links]),
        step_latency_us=arr([_nan_if_none(lk.step_latency_us) for lk in scenario.links]),
        usable_gbps=arr([_nan_if_none(lk.usable_gbps) for lk in scenario.links]),
    )


def _nan_if_none(value: float | None) -> float:
    return np.nan if value is None else float(value)


def evaluate(topo: Topology, x: Inputs) -> Outputs:
    """Evaluate a batch of scenarios (the equations in the module docstring), all arrays.

    Returns :class:`Outputs` whose arrays have the batch shape. Infeasible scenarios (no
    replica fits, or a multi-site ring hop without a link) get an infinite step time and zero
    useful throughput and value.
    """
    shape = x.batch_shape()
    size = int(np.prod(shape)) if shape else 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if size <= _CHUNK_ROWS:
            return _evaluate(topo, x)
        # Large batches go through in cache-sized chunks: the same arithmetic, but the many
        # temporaries stay small instead of each costing a fresh multi-megabyte allocation.
        flat = _flatten(x, shape, size)
        merged: dict[str, Any] = {}
        for start in range(0, size, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, size)
            part = _evaluate(topo, _rows(flat, start, stop))
            for f in fields(Outputs):
                chunk = getattr(part, f.name)
                if f.name not in merged:  # one allocation per output, filled chunk by chunk
                    merged[f.name] = np.empty(size, dtype=chunk.dtype)
                merged[f.name][start:stop] = chunk
        return Outputs(**{k: v.reshape(shape) for k, v in merged.items()})


_CHUNK_ROWS = 8192


def _flatten(x: Inputs, shape: tuple[int, ...], size: int) -> Inputs:
    """Every input broadcast to the batch shape and flattened to one batch axis (views when
    the batch is already 1-D)."""
    out: dict[str, FloatArray] = {}
    for f in fields(x):
        arr = getattr(x, f.name)
        tail = () if f.name in SCALAR_FIELDS else arr.shape[-1:]
        out[f.name] = np.broadcast_to(arr, shape + tail).reshape((size, *tail))
    return Inputs(**out)


def _rows(x: Inputs, start: int, stop: int) -> Inputs:
    return Inputs(**{f.name: getattr(x, f.name)[start:stop] for f in fields(x)})


def _ring_next(active: list[BoolArray]) -> list[npt.NDArray[np.intp]]:
    """For each site, the index of the next active site in ring (scenario) order."""
    n_sites = len(active)
    out = []
    for s in range(n_sites):
        # Walk the candidates backwards so the nearest active one wins.
        order = list(range(s + 1, n_sites)) + list(range(0, s + 1))
        pick = np.full(active[s].shape, s, dtype=np.intp)
        for j in reversed(order):
            pick = np.where(active[j], j, pick)
        out.append(pick)
    return out


def _evaluate(topo: Topology, x: Inputs) -> Outputs:
    # Layout: pool and link inputs are moved to a LEADING axis, (P, *batch) and (L, *batch),
    # contiguous. Reductions over pools then run element-wise across the batch, which is many
    # times faster in numpy than reducing a short trailing axis row by row.
    shape = x.batch_shape()
    n_pools = len(topo.pool_site)
    n_links = len(topo.link_a)

    def sc(a: FloatArray) -> FloatArray:
        return np.broadcast_to(a, shape)

    def lead(a: FloatArray, n: int) -> FloatArray:
        return np.ascontiguousarray(np.moveaxis(np.broadcast_to(a, (*shape, n)), -1, 0))

    flops = sc(x.flops_per_step)
    tp, pp = sc(x.tensor_parallel), sc(x.pipeline_parallel)
    rep = tp * pp
    gpus = lead(x.gpus, n_pools)
    replicas_p = np.floor(gpus / rep)
    active = replicas_p > 0.0
    replicas = replicas_p.sum(axis=0)
    gpus_used = replicas * rep
    # FLOP/s per GPU: peak · kernel MFU · GEMM-width efficiency (docs/model.md, "Compute").
    speed_p = lead(x.peak_tflops * 1e12 * x.mfu, n_pools) * terms.kernel_efficiency(
        sc(x.hidden_size), tp
    )
    capacity = (gpus * speed_p).sum(axis=0)

    # --- split (fractions of the global batch per replica) ---
    equal = 1.0 / replicas
    hbm = lead(x.hbm_gb, n_pools)
    hbm_min = np.where(active, hbm, np.inf).min(axis=0, initial=np.inf)
    cap = equal * hbm / (hbm_min * sc(x.memory_fill))
    capped = np.zeros(active.shape, dtype=bool)
    rs = replicas_p * speed_p
    scale = np.zeros(shape)
    for _ in range(max(n_pools, 1)):
        taken = np.where(capped, replicas_p * cap, 0.0).sum(axis=0)
        free = np.where(capped | ~active, 0.0, rs).sum(axis=0)
        scale = (1.0 - taken) / free
        share = np.where(capped, cap, scale * speed_p)
        newly = active & ~capped & (share > cap * (1.0 + 1e-12))
        if not newly.any():
            break
        capped = capped | newly
    prop_share = np.where(capped, cap, scale * speed_p)

    per_flop = flops / (rep * speed_p)  # s per unit share
    t_equal = np.where(active, per_flop * equal, 0.0)
    t_prop = np.where(active, per_flop * prop_share, 0.0)
    compute_equal = t_equal.max(axis=0, initial=0.0)
    compute_prop = t_prop.max(axis=0, initial=0.0)
    proportional = sc(x.batch_split) == 1.0
    t_pool = np.where(proportional, t_prop, t_equal)
    compute_nostrag = np.where(proportional, compute_prop, compute_equal)
    compute_ideal = flops / (rs * rep).sum(axis=0)
    split_loss = 1.0 - compute_ideal / compute_nostrag

    bubble = terms.pipeline_factor(
        pp, sc(x.microbatches), sc(x.pipeline_interleave), sc(x.stage_imbalance)
    )

    # --- sites ---
    pool_site = np.asarray(topo.pool_site, dtype=np.intp)
    site_pools = [np.nonzero(pool_site == s)[0] for s in range(topo.n_sites)]
    site_replicas = [replicas_p[idx].sum(axis=0) for idx in site_pools]
    site_active = [r > 0.0 for r in site_replicas]
    sites_used = np.sum(site_active, axis=0, dtype=np.float64) if site_active else np.zeros(shape)
    multi = sites_used >= 2.0
    sync = sc(x.sync)
    diloco = (sync == 2.0) & multi

    # Stragglers: whole synchronous group, or the largest site for DiLoCo inner steps.
    largest_site = np.max(site_replicas, axis=0) if site_replicas else np.zeros(shape)
    sync_replicas = np.where(diloco, largest_site, replicas)
    strag_p = terms.straggler_factor(
        lead(x.jitter_cv, n_pools),
        sync_replicas * rep,
        sc(x.slow_worker_fraction),
        sc(x.slow_worker_slowdown),
        sc(x.load_imbalance_cv),
        sync_replicas,
    )
    t_strag = t_pool * bubble * strag_p
    compute = t_strag.max(axis=0, initial=0.0)
    slowest_pool = np.argmax(t_strag, axis=0) if n_pools else np.zeros(shape, dtype=np.int64)
    straggler = compute / (compute_nostrag * bubble)

    # --- communication ---
    bytes_rank = sc(x.grad_bytes) / rep
    busbw = terms.gbps_to_bytes_per_s(lead(x.busbw_gbps, n_pools))
    busbw_active = np.where(active, busbw, np.inf)
    intra_hier = np.zeros(shape)
    for s, idx in enumerate(site_pools):
        bw_s = busbw_active[idx].min(axis=0, initial=np.inf)
        intra_hier = np.maximum(intra_hier, terms.allreduce_s(bytes_rank, site_replicas[s], bw_s))

    # Concurrent connections on every inter-site hop (docs/model.md, "Links": flows): a flat
    # ring is TP·PP rings, one per model-shard position, each crossing every hop once; the
    # hierarchical (and DiLoCo's outer) all-reduce runs one ring per slice left by the
    # reduce-scatter inside each site, as many as the ranks of the site with the fewest.
    fewest = np.full(shape, np.inf)
    for r in site_replicas:
        fewest = np.where(r > 0.0, np.minimum(fewest, r), fewest)
    connections = terms.hop_connections(sync, rep, np.where(np.isfinite(fewest), fewest, 1.0))
    # A hop's connections spread evenly over its direct links; each carries `streams` flows.
    pair_links: dict[tuple[int, int], int] = {}
    for a, b in zip(topo.link_a, topo.link_b, strict=True):
        key = (min(a, b), max(a, b))
        pair_links[key] = pair_links.get(key, 0) + 1
    share = np.asarray(
        [
            1.0 / pair_links[(min(a, b), max(a, b))]
            for a, b in zip(topo.link_a, topo.link_b, strict=True)
        ]
    ).reshape((n_links,) + (1,) * len(shape))
    one_way = terms.one_way_latency_s(lead(x.route_km, n_links), lead(x.latency_us, n_links))
    usable = terms.link_usable_bytes_per_s(
        lead(x.bandwidth_gbps, n_links),
        lead(x.efficiency, n_links),
        lead(x.window_bytes, n_links),
        lead(x.streams, n_links) * connections * share,
        2.0 * one_way,
        lead(x.loss_rate, n_links),
        lead(x.mss_bytes, n_links),
    )
    lat = terms.step_latency_s(one_way, lead(x.rendezvous_rtts, n_links))
    # A calibration's measured figures replace the derived ones (docs/model.md, "Calibration").
    measured_bw = lead(x.usable_gbps, n_links)
    usable = np.where(np.isnan(measured_bw), usable, terms.gbps_to_bytes_per_s(measured_bw))
    measured_lat = lead(x.step_latency_us, n_links)
    lat = np.where(np.isnan(measured_lat), lat, measured_lat * 1e-6)
    # Site pairs: summed usable throughput, slowest latency of the direct links.
    pair_bw: dict[tuple[int, int], FloatArray] = {}
    pair_lat: dict[tuple[int, int], FloatArray] = {}
    for li, (a, b) in enumerate(zip(topo.link_a, topo.link_b, strict=True)):
        key = (min(a, b), max(a, b))
        pair_bw[key] = pair_bw[key] + usable[li] if key in pair_bw else usable[li]
        pair_lat[key] = np.maximum(pair_lat[key], lat[li]) if key in pair_lat else lat[li]
    nxt = _ring_next(site_active)
    hop_bw_min = np.full(shape, np.inf)
    hop_lat_max = np.zeros(shape)
    for s in range(topo.n_sites):
        bw_s = np.zeros(shape)
        lat_s = np.zeros(shape)
        for j in range(topo.n_sites):
            key = (min(s, j), max(s, j))
            if j == s or key not in pair_bw:
                continue
            to_j = nxt[s] == j
            bw_s = np.where(to_j, pair_bw[key], bw_s)
            lat_s = np.where(to_j, pair_lat[key], lat_s)
        hop_bw_min = np.where(site_active[s], np.minimum(hop_bw_min, bw_s), hop_bw_min)
        hop_lat_max = np.where(site_active[s], np.maximum(hop_lat_max, lat_s), hop_lat_max)
    hop_bw_min = np.where(multi, hop_bw_min, np.inf)
    hop_lat_max = np.where(multi, hop_lat_max, 0.0)

    grad = sc(x.grad_bytes)
    inter_hier = terms.hierarchical_inter_site_s(grad, sites_used, hop_bw_min, hop_lat_max)

    # Flat ring: one ring over every replica; each of its 2(D−1) steps is paced by the slowest
    # hop (latency and bandwidth), the inter-site hop carrying every shard's traffic.
    busbw_all = busbw_active.min(axis=0, initial=np.inf)
    intra_flat = terms.allreduce_s(bytes_rank, replicas, busbw_all)
    link_time = np.where(multi, grad / hop_bw_min, 0.0)
    flat = terms.allreduce_s(
        np.maximum(bytes_rank, link_time * busbw_all),
        replicas,
        busbw_all,
        terms.NETWORK_HOP_LATENCY_S + hop_lat_max,
    )
    inter_flat = np.where(replicas > 1.0, flat - intra_flat, 0.0)

    flat_ring = sync == 0.0
    intra = np.where(flat_ring, intra_flat, intra_hier)
    inter = np.where(
        flat_ring, inter_flat, np.where(diloco, inter_hier / sc(x.diloco_inner_steps), inter_hier)
    )
    comm = intra + inter

    # Overlap: given, or the last micro-batch's backward pass (2/3 of its compute) on the
    # critical replica (docs/model.md, "Collectives": overlap). The critical replica is the
    # one that sets `compute` (after stragglers), so the window is taken from `compute` itself:
    # per micro-batch that is compute / (bubble · m). Taking it from the slowest pool before
    # stragglers (v1) could pick another pool, and slowing that pool then widened the window
    # without lengthening the step: a slower GPU made the step faster. Now
    # step = compute + max(0, comm − c·compute) with c = 2/(3·bubble·m) < 1: never faster.
    derived = (2.0 / 3.0) * compute / (bubble * sc(x.microbatches))
    overlap = np.where(np.isnan(sc(x.overlap_s)), derived, sc(x.overlap_s))
    exposed = terms.exposed_s(comm, overlap)
    step = compute + exposed

    # --- failures and value ---
    mtbf_s = lead(x.mtbf_hours, n_pools) * terms.SECONDS_PER_HOUR
    fail_rate = (replicas_p * rep / mtbf_s).sum(axis=0)
    mtbf_cluster = 1.0 / fail_rate
    good = terms.goodput(mtbf_cluster, sc(x.restart_cost_s))
    quality = 1.0 - np.where(diloco, sc(x.diloco_quality_penalty), 0.0)
    feasible = np.isfinite(step) & (replicas > 0.0)
    raw = np.where(feasible, flops / step, 0.0)
    useful = raw * good * quality
    efficiency = np.where(capacity > 0.0, useful / capacity, 0.0)
    achieved = np.where(feasible, raw / gpus_used / 1e12, 0.0)
    horizon = sc(x.horizon_days)
    value = terms.internal_value_usd(useful, horizon, x.usd_per_flop, x.scarcity_multiplier)
    rent = terms.rent_usd(x.rent_per_month_usd, horizon)
    net = value - rent

    def f(a: Any) -> FloatArray:
        return np.asarray(np.broadcast_to(a, shape), dtype=np.float64)

    return Outputs(
        replicas=f(replicas),
        gpus_used=f(gpus_used),
        sites_used=f(sites_used),
        compute_ideal_s=f(compute_ideal),
        compute_equal_s=f(compute_equal * bubble),
        compute_proportional_s=f(compute_prop * bubble),
        pipeline_factor=f(bubble),
        straggler_factor=f(np.where(np.isfinite(straggler), straggler, 1.0)),
        compute_s=f(compute),
        intra_site_s=f(intra),
        inter_site_s=f(inter),
        comm_s=f(comm),
        overlap_s=f(overlap),
        exposed_comm_s=f(exposed),
        step_time_s=f(np.where(replicas > 0.0, step, np.inf)),
        goodput=f(good),
        quality=f(quality),
        useful_flops_per_s=f(useful),
        capacity_flops_per_s=f(capacity),
        efficiency=f(efficiency),
        achieved_tflops_per_gpu=f(achieved),
        slowest_hop_bytes_per_s=f(hop_bw_min),
        slowest_hop_latency_s=f(hop_lat_max),
        hop_connections=f(np.where(multi, connections, 0.0)),
        split_loss=f(np.where(np.isfinite(split_loss), split_loss, 0.0)),
        slowest_pool=np.asarray(np.broadcast_to(slowest_pool, shape), dtype=np.int64),
        cluster_mtbf_s=f(mtbf_cluster),
        internal_value_usd=f(value),
        rent_usd=f(rent),
        net_usd=f(net),
        reclaim=np.asarray(np.broadcast_to((net > 0.0) & (horizon > 0.0), shape)),
    )


def stack_inputs(items: list[Inputs]) -> Inputs:
    """Stack 0-d/1-D inputs of the same topology into a 1-D batch."""
    out: dict[str, FloatArray] = {}
    for f in fields(Inputs):
        out[f.name] = np.stack([np.asarray(getattr(i, f.name)) for i in items], axis=0)
    return Inputs(**out)


def evaluate_reference(topo: Topology, x: Inputs) -> dict[str, float]:
    """Evaluate ONE scenario (0-d scalars, 1-D pools/links) with the plain-Python evaluator.

    Same equations as :func:`evaluate`, transcribed independently with loops (reference.py);
    used by tests to cross-check and by the benchmark as the per-scenario Python loop.
    """
    from .reference import evaluate_one

    scalars = {n: float(getattr(x, n)) for n in SCALAR_FIELDS}
    pools = {n: [float(v) for v in getattr(x, n)] for n in POOL_FIELDS}
    links = {n: [float(v) for v in getattr(x, n)] for n in LINK_FIELDS}
    return evaluate_one(
        topo.pool_site, topo.link_a, topo.link_b, topo.n_sites, scalars, pools, links
    )
