"""Plain-Python evaluator of one scenario: the same equations as model.py, written with loops
and the math module, no numpy.

It exists to cross-check the vectorized evaluator (tests compare them on random scenarios) and
to give the benchmark an honest per-scenario Python loop to compare against. It is a second,
independent transcription of the rules in model.py's docstring, not a wrapper around it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

FIBER_US_PER_KM = 4.9
RING_BASE_LATENCY_S = 8.5e-6
NETWORK_HOP_LATENCY_S = 10e-6


MATHIS_C = 0.98  # measured by the harness (link.py)
LOSS_BLEND = 2.0  # soft minimum of the loss bound and the line/window bound


@functools.lru_cache(maxsize=4096)
def _expected_max(n: float) -> float:
    """E[max of n iid standard normals], n ≥ 1: ∫ x · n φ(x) Φ(x)^(n−1) dx by Simpson's rule
    on [−10, 10] (h = 0.005). The density form, not the CDF form the vectorized table uses."""
    if n <= 1.0:
        return 0.0
    h = 0.005
    total = 0.0
    for i in range(4001):
        x = -10.0 + i * h
        if x > 0.0:  # ln Φ from the upper tail, or n·ln Φ loses every digit for large n
            log_cdf = math.log1p(-0.5 * math.erfc(x / math.sqrt(2.0)))
        else:
            cdf = 0.5 * math.erfc(-x / math.sqrt(2.0))
            if cdf <= 0.0:
                continue
            log_cdf = math.log(cdf)
        pdf = math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        w = 1.0 if i in (0, 4000) else (4.0 if i % 2 else 2.0)
        total += w * x * n * pdf * math.exp((n - 1.0) * log_cdf)
    return total * h / 3.0


def _slowdown(cv: float, n: float, s: Mapping[str, float], replicas: float) -> float:
    """Straggler multiplier: jitter, persistent slow workers, load imbalance."""
    n = max(n, 1.0)
    jitter = 1.0 + cv * _expected_max(n)
    k = s["slow_worker_fraction"] * n
    if k > 0.0:
        slow = s["slow_worker_slowdown"] * (1.0 + cv * _expected_max(max(float(round(k)), 1.0)))
        jitter += min(k, 1.0) * max(slow - jitter, 0.0)
    return jitter * (1.0 + s["load_imbalance_cv"] * _expected_max(max(replicas, 1.0)))


def _ring(bytes_per_rank: float, ranks: float, busbw: float, step_lat: float) -> float:
    """The faster of a ring and a double binary tree (NCCL's choice)."""
    if ranks <= 1.0:
        return 0.0
    steps = 2.0 * (ranks - 1.0)
    ring = steps * step_lat + steps / ranks * bytes_per_rank / busbw
    tree = 2.0 * math.ceil(math.log2(ranks)) * step_lat + 2.0 * bytes_per_rank / busbw
    return RING_BASE_LATENCY_S + min(ring, tree)


def evaluate_one(
    pool_site: Sequence[int],
    link_a: Sequence[int],
    link_b: Sequence[int],
    n_sites: int,
    s: Mapping[str, float],
    pools: Mapping[str, Sequence[float]],
    links: Mapping[str, Sequence[float]],
) -> dict[str, float]:
    """Evaluate one scenario given as plain floats; returns the headline figures.

    ``s`` holds the scalar inputs, ``pools`` and ``links`` lists per field, all named and in the
    units of :class:`clusters.perfmodel.model.Inputs`. Returns step_time_s, compute_s,
    intra_site_s, inter_site_s, exposed_comm_s, goodput, useful_flops_per_s, internal_value_usd,
    rent_usd, net_usd (seconds, FLOP/s, USD).
    """
    n_pools = len(pool_site)
    rep = s["tensor_parallel"] * s["pipeline_parallel"]
    flops = s["flops_per_step"]
    reps = [math.floor(pools["gpus"][p] / rep) for p in range(n_pools)]
    act = [r > 0 for r in reps]
    total = float(sum(reps))
    width = s["hidden_size"] / s["tensor_parallel"]
    gemm = 1.0 if math.isnan(width) else (width / (width + 700.0)) / (2048.0 / (2048.0 + 700.0))
    speed = [pools["peak_tflops"][p] * 1e12 * pools["mfu"][p] * gemm for p in range(n_pools)]

    # Split: equal, or proportional water-filled under the HBM cap.
    t_pool = [0.0] * n_pools
    if total > 0:
        equal = 1.0 / total
        if s["batch_split"] == 1.0:
            hbm_min = min(pools["hbm_gb"][p] for p in range(n_pools) if act[p])
            cap = [
                equal * pools["hbm_gb"][p] / (hbm_min * s["memory_fill"]) for p in range(n_pools)
            ]
            capped = [False] * n_pools
            while True:
                taken = sum(reps[p] * cap[p] for p in range(n_pools) if capped[p])
                free = sum(reps[p] * speed[p] for p in range(n_pools) if act[p] and not capped[p])
                scale = (1.0 - taken) / free if free > 0 else 0.0
                over = [
                    p
                    for p in range(n_pools)
                    if act[p] and not capped[p] and scale * speed[p] > cap[p] * (1 + 1e-12)
                ]
                if not over:
                    break
                for p in over:
                    capped[p] = True
            share = [cap[p] if capped[p] else scale * speed[p] for p in range(n_pools)]
        else:
            share = [equal] * n_pools
        for p in range(n_pools):
            if act[p]:
                t_pool[p] = flops * share[p] / (rep * speed[p])
    bubble = 1.0 + (s["pipeline_parallel"] - 1.0) / (s["pipeline_interleave"] * s["microbatches"])
    if s["pipeline_parallel"] > 1.0:
        bubble += s["stage_imbalance"]

    site_reps = [0.0] * n_sites
    for p in range(n_pools):
        site_reps[pool_site[p]] += reps[p]
    active_sites = [i for i in range(n_sites) if site_reps[i] > 0]
    k = len(active_sites)
    diloco = s["sync"] == 2.0 and k >= 2
    group = max(site_reps) if diloco else total
    compute = max(
        (
            t_pool[p] * bubble * _slowdown(pools["jitter_cv"][p], group * rep, s, group)
            for p in range(n_pools)
            if act[p]
        ),
        default=0.0,
    )

    bytes_rank = s["grad_bytes"] / rep
    busbw = [pools["busbw_gbps"][p] * 1e9 / 8.0 for p in range(n_pools)]
    intra_hier = 0.0
    for i in range(n_sites):
        bws = [busbw[p] for p in range(n_pools) if act[p] and pool_site[p] == i]
        if bws:
            intra_hier = max(
                intra_hier, _ring(bytes_rank, site_reps[i], min(bws), NETWORK_HOP_LATENCY_S)
            )

    # Ring of active sites in scenario order; each hop sums its direct links. The hop carries
    # one connection per parallel ring: TP·PP for a flat ring, TP·PP × the fewest replicas of
    # an active site once each site has reduce-scattered (hierarchical, DiLoCo); they spread
    # evenly over the hop's links, each connection `streams` flows.
    if s["sync"] == 0.0:
        rings = rep
    else:
        rings = rep * min((site_reps[i] for i in active_sites), default=1.0)
    hop_bw = math.inf
    hop_lat = 0.0
    if k >= 2:
        for idx, i in enumerate(active_sites):
            j = active_sites[(idx + 1) % k]
            bw = 0.0
            lat = 0.0
            on_hop = [li for li in range(len(link_a)) if {link_a[li], link_b[li]} == {i, j}]
            for li in on_hop:
                flows = links["streams"][li] * rings / len(on_hop)
                one_way = (links["route_km"][li] * FIBER_US_PER_KM + links["latency_us"][li]) * 1e-6
                line = links["bandwidth_gbps"][li] * 1e9 / 8.0 * links["efficiency"][li]
                window = (
                    flows * links["window_bytes"][li] / (2.0 * one_way) if one_way > 0 else math.inf
                )
                loss = links["loss_rate"][li]
                mathis = (
                    flows * MATHIS_C * links["mss_bytes"][li] / (2.0 * one_way * math.sqrt(loss))
                    if one_way > 0 and loss > 0
                    else math.inf
                )
                measured_bw = links["usable_gbps"][li]
                if math.isnan(measured_bw):
                    low, high = sorted((min(line, window), mathis))
                    bw += (
                        low * (1.0 + (low / high) ** LOSS_BLEND) ** (-1.0 / LOSS_BLEND)
                        if math.isfinite(high) and low > 0.0
                        else low
                    )
                else:
                    bw += measured_bw * 1e9 / 8.0
                measured_lat = links["step_latency_us"][li]
                if math.isnan(measured_lat):
                    lat = max(lat, one_way * (1.0 + 2.0 * links["rendezvous_rtts"][li]))
                else:
                    lat = max(lat, measured_lat * 1e-6)
            hop_bw = min(hop_bw, bw)
            hop_lat = max(hop_lat, lat)
    grad = s["grad_bytes"]
    if k >= 2:
        inter_hier = (2.0 * (k - 1) / k * grad / hop_bw if hop_bw > 0 else math.inf) + 2.0 * (
            k - 1
        ) * hop_lat
    else:
        inter_hier = 0.0

    if s["sync"] == 0.0:
        bw_all = min((busbw[p] for p in range(n_pools) if act[p]), default=math.inf)
        intra = _ring(bytes_rank, total, bw_all, NETWORK_HOP_LATENCY_S)
        if k >= 2:
            link_time = grad / hop_bw if hop_bw > 0 else math.inf
            per_byte = max(bytes_rank / bw_all, link_time)
            flat = _ring(per_byte * bw_all, total, bw_all, NETWORK_HOP_LATENCY_S + hop_lat)
            inter = flat - intra
        else:
            inter = 0.0
    else:
        intra = intra_hier
        inter = inter_hier / s["diloco_inner_steps"] if diloco else inter_hier
    comm = intra + inter
    overlap = s["overlap_s"]
    if math.isnan(overlap):
        # The critical replica's last micro-batch backward: 2/3 of compute / (bubble · m).
        overlap = 2.0 / 3.0 * compute / (bubble * s["microbatches"])
    exposed = max(0.0, comm - overlap)
    step = compute + exposed if total > 0 else math.inf

    rate = sum(reps[p] * rep / (pools["mtbf_hours"][p] * 3600.0) for p in range(n_pools))
    if rate > 0:
        mtbf = 1.0 / rate
        good = mtbf / (mtbf + s["restart_cost_s"])
    else:
        good = 1.0
    quality = 1.0 - (s["diloco_quality_penalty"] if diloco else 0.0)
    useful = flops / step * good * quality if math.isfinite(step) and total > 0 else 0.0
    value = useful * s["horizon_days"] * 86400.0 * s["usd_per_flop"] * s["scarcity_multiplier"]
    rent = s["rent_per_month_usd"] * 12.0 * s["horizon_days"] / 365.0
    return {
        "step_time_s": step,
        "compute_s": compute,
        "intra_site_s": intra,
        "inter_site_s": inter,
        "exposed_comm_s": exposed,
        "goodput": good,
        "useful_flops_per_s": useful,
        "internal_value_usd": value,
        "rent_usd": rent,
        "net_usd": value - rent,
    }
