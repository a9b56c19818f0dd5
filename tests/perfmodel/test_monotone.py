"""Monotone where physics is: over ≥ 10,000 random scenarios per property (one vectorized
batch each), more bandwidth, less latency and faster GPUs never make a step slower.

Each property draws a random batch of every model input on a topology, perturbs one physical
input in the "better" direction, evaluates both batches and counts violations
(step time up by more than 1e-12 relative). The count must be zero; it is printed.
"""

import numpy as np
import pytest

from clusters.perfmodel import Scenario, evaluate, inputs_of, topology_of

from .scenarios import demo_dict, two_site_dict

N = 12_000
TOPOLOGIES = {"two_sites": two_site_dict, "demo_metro": demo_dict}


def random_batch(name, rng, n=N):
    sc = Scenario.from_dict(TOPOLOGIES[name]())
    x = inputs_of(sc)
    p, links = x.gpus.shape[-1], x.bandwidth_gbps.shape[-1]

    def pick(values, size=None):
        return rng.choice(np.asarray(values, dtype=float), size=size if size else n)

    x = x.replace(
        gpus=rng.integers(0, 8192, (n, p)).astype(float),
        peak_tflops=rng.uniform(50, 3000, (n, p)),
        mfu=rng.uniform(0.1, 0.9, (n, p)),
        jitter_cv=rng.uniform(0, 0.1, (n, p)),
        hbm_gb=pick([32.0, 80.0, 141.0, 186.0], (n, p)),
        busbw_gbps=rng.uniform(25, 800, (n, p)),
        mtbf_hours=rng.uniform(1e3, 1e5, (n, p)),
        bandwidth_gbps=np.exp(rng.uniform(0, np.log(1e5), (n, links))),
        route_km=rng.uniform(0, 3000, (n, links)),
        latency_us=rng.uniform(0, 500, (n, links)),
        efficiency=rng.uniform(0.3, 1.0, (n, links)),
        window_bytes=pick([2.0**20, 2.0**24, 2.0**28, np.inf], (n, links)),
        streams=rng.integers(1, 16, (n, links)).astype(float),
        handshake_rtts=rng.integers(0, 3, (n, links)).astype(float),
        tensor_parallel=pick([1, 2, 4, 8]),
        pipeline_parallel=pick([1, 2, 4, 8, 16]),
        microbatches=rng.integers(1, 64, n).astype(float),
        pipeline_interleave=pick([1, 2, 4]),
        sync=rng.integers(0, 3, n).astype(float),
        batch_split=rng.integers(0, 2, n).astype(float),
        memory_fill=rng.uniform(0.2, 1.0, n),
        overlap_s=np.where(rng.random(n) < 0.7, np.nan, rng.uniform(0, 5, n)),
        diloco_inner_steps=rng.integers(1, 500, n).astype(float),
        stage_imbalance=rng.uniform(0, 0.5, n) * (rng.random(n) < 0.5),
        load_imbalance_cv=rng.uniform(0, 0.4, n) * (rng.random(n) < 0.5),
        slow_worker_fraction=rng.uniform(0, 0.02, n) * (rng.random(n) < 0.5),
        slow_worker_slowdown=rng.uniform(1, 3, n),
        hidden_size=pick([np.nan, 4096, 8192, 16384]),
        flops_per_step=np.exp(rng.uniform(np.log(1e15), np.log(1e21), n)),
        grad_bytes=np.exp(rng.uniform(np.log(1e8), np.log(1e12), n)),
    )
    return topology_of(sc), x


def _which(rng, shape):
    """A random one-hot mask over the last axis (one pool or link improved per scenario)."""
    idx = rng.integers(0, shape[-1], shape[0])
    return np.arange(shape[-1])[None, :] == idx[:, None]


def _violations(topo, before, after):
    a = evaluate(topo, before).step_time_s
    b = evaluate(topo, after).step_time_s
    worse = b > a * (1 + 1e-12)
    both_inf = np.isinf(a) & np.isinf(b)
    return int(np.count_nonzero(worse & ~both_inf))


def _improve(rng, x, field, mode):
    arr = np.asarray(getattr(x, field))
    mask = _which(rng, arr.shape) if mode == "one" else np.ones(arr.shape, dtype=bool)
    factor = np.exp(rng.uniform(0, np.log(10), arr.shape))
    return arr, mask, factor


PROPERTIES = {
    # field, direction: "up" multiplies by a factor in [1, 10), "down" divides.
    "more link bandwidth (one link)": ("bandwidth_gbps", "up", "one"),
    "more link bandwidth (every link)": ("bandwidth_gbps", "up", "all"),
    "more streams (one link)": ("streams", "up_int", "one"),
    "larger window (one link)": ("window_bytes", "up", "one"),
    "higher link efficiency (one link)": ("efficiency", "eff", "one"),
    "shorter route (one link)": ("route_km", "down", "one"),
    "less equipment latency (one link)": ("latency_us", "down", "one"),
    "fewer handshake round trips (one link)": ("handshake_rtts", "fewer", "one"),
    "more fabric bandwidth (one pool)": ("busbw_gbps", "up", "one"),
    "faster GPU peak (one pool)": ("peak_tflops", "up", "one"),
    "higher kernel MFU (one pool)": ("mfu", "eff", "one"),
    "faster GPUs (every pool)": ("peak_tflops", "up", "all"),
    "less jitter (one pool)": ("jitter_cv", "down", "one"),
}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("prop", sorted(PROPERTIES))
def test_never_slower(topology, prop):
    rng = np.random.default_rng(abs(hash((topology, prop))) % 2**32)
    topo, x = random_batch(topology, rng)
    field, direction, mode = PROPERTIES[prop]
    arr, mask, factor = _improve(rng, x, field, mode)
    if direction == "up":
        new = np.where(mask, arr * factor, arr)
    elif direction == "up_int":
        new = np.where(mask, arr + rng.integers(1, 8, arr.shape), arr)
    elif direction == "eff":
        new = np.where(mask, arr + (1.0 - arr) * rng.random(arr.shape), arr)
    elif direction == "fewer":
        new = np.where(mask, np.maximum(arr - 1.0, 0.0), arr)
    else:
        new = np.where(mask, arr / factor, arr)
    count = _violations(topo, x, x.replace(**{field: new}))
    print(f"{topology:<11} {prop:<40} {N:,} scenarios, {count} violations")
    assert count == 0


def test_the_v1_overlap_rule_did_violate_faster_gpu_monotonicity():
    """With the overlap taken from the slowest pool before stragglers (v1), slowing the
    non-critical pool could widen the window and shorten the step. Reconstructed here on the
    v2 terms: the same batch shows violations under the v1 rule and none under v2."""
    rng = np.random.default_rng(5)
    topo, x = random_batch("two_sites", rng, 4000)
    x = x.replace(jitter_cv=rng.uniform(0, 0.3, x.jitter_cv.shape))
    arr, mask, factor = _improve(rng, x, "peak_tflops", "one")
    slower = x.replace(peak_tflops=np.where(mask, arr / factor, arr))
    a, b = evaluate(topo, x), evaluate(topo, slower)

    def v1_step(o):
        # v1: overlap = 2/3 · (slowest pool's compute before stragglers) / m.
        m = np.broadcast_to(x.microbatches, o.compute_s.shape)
        nostrag = o.compute_s / (o.straggler_factor * o.pipeline_factor)
        derived = np.isnan(np.broadcast_to(x.overlap_s, m.shape))
        overlap = np.where(derived, 2 / 3 * nostrag / m, np.broadcast_to(x.overlap_s, m.shape))
        return o.compute_s + np.maximum(o.comm_s - overlap, 0.0)

    v1_faster = np.count_nonzero(v1_step(b) < v1_step(a) * (1 - 1e-9))
    print(f"slower GPU, faster step: v1 rule {v1_faster} of 4,000, v2 rule 0")
    assert v1_faster > 0
    assert np.count_nonzero(b.step_time_s < a.step_time_s * (1 - 1e-12)) == 0
