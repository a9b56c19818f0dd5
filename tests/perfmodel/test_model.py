"""The vectorized evaluator: heterogeneity, Llama 3 anchors, cross-check, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.perfmodel import (
    CATALOG,
    Scenario,
    evaluate,
    evaluate_reference,
    inputs_of,
    terms,
    topology_of,
)
from clusters.perfmodel.calibrate import calibrate_mfu
from clusters.perfmodel.model import stack_inputs

from .scenarios import demo, llama_dict, two_site_dict


def _half_and_half(split):
    return Scenario.from_dict(
        {
            "workload": {
                "params": 7e9,
                "tokens_per_step": 4e6,
                "batch_split": split,
                "overlap_s": 1e9,
            },
            "accelerators": {"H100": {"jitter_cv": 0.0}, "A100": {"jitter_cv": 0.0, "hbm_gb": 80}},
            "pools": [
                {"site": "dc", "accelerator": "H100", "gpus": 512, "fabric_gbps_per_gpu": 400},
                {"site": "dc", "accelerator": "A100", "gpus": 512, "fabric_gbps_per_gpu": 400},
            ],
        }
    )


def test_equal_split_delivers_n_times_min_speed_proportional_delivers_sum():
    """docs/model.md, "Compute": equal split → n·min(speed); proportional → Σ speed (memory allows:
    both have 80 GB). Communication hidden, no jitter, no pipeline."""
    h100 = 989e12 * CATALOG["H100"].mfu
    a100 = 312e12 * CATALOG["A100"].mfu
    flops = 6 * 7e9 * 4e6
    for split, expected in (
        ("equal", 1024 * min(h100, a100)),
        ("proportional", 512 * h100 + 512 * a100),
    ):
        sc = _half_and_half(split)
        out = evaluate(topology_of(sc), inputs_of(sc))
        assert flops / float(out.step_time_s) == pytest.approx(expected, rel=1e-9)
    # Equal split wastes about half of the H100s' (achieved) speed and more.
    eq = evaluate(topology_of(_half_and_half("equal")), inputs_of(_half_and_half("equal")))
    assert float(eq.split_loss) == pytest.approx(1 - 2 * a100 / (h100 + a100), rel=1e-9)


def test_proportional_split_is_memory_capped():
    """With memory_fill = 1 (the equal split fills the smallest pool's memory) a pool may take
    at most hbm/min(hbm) times the equal share: a very fast 141 GB H200 next to 80 GB A100s
    is capped at 141/80 of the equal share and the A100s carry the rest."""
    sc = Scenario.from_dict(
        {
            "workload": {
                "params": 7e9,
                "tokens_per_step": 4e6,
                "batch_split": "proportional",
                "memory_fill": 1.0,
            },
            "accelerators": {"H200": {"peak_tflops": 100_000}},
            "pools": [
                {"site": "dc", "accelerator": "A100", "gpus": 64, "fabric_gbps_per_gpu": 200},
                {"site": "dc", "accelerator": "H200", "gpus": 64, "fabric_gbps_per_gpu": 400},
            ],
        }
    )
    out = evaluate(topology_of(sc), inputs_of(sc))
    equal_share = 1 / 128
    cap = equal_share * 141 / 80
    a100_share = (1 - 64 * cap) / 64
    a100_speed = 312e12 * CATALOG["A100"].mfu
    expected_a100 = 6 * 7e9 * 4e6 * a100_share / a100_speed
    assert float(out.compute_proportional_s) == pytest.approx(expected_a100, rel=1e-9)
    assert float(out.compute_proportional_s) < float(out.compute_equal_s)


def test_llama3_405b_per_gpu_throughput_8k_and_16k():
    """Llama 3 405B (paper, Table 4): 430 TFLOP/s/GPU at 8,192 H100s (DP 64, 32 micro-batches
    per replica), 400 at 16,384 (DP 128, 16 micro-batches), same 16M-token batch.

    The published MFU 430/989 is end-to-end, so it goes in through calibrate_mfu on the 8K
    configuration (reproduced exactly, by construction). The model then predicts 16K from its
    own terms. The loss is carried mostly by the pipeline bubble: a fixed 16M-token batch
    over twice the replicas halves the micro-batches per replica (bubble (pp−1)/(v·m) doubles).
    Stragglers (N 8K → 16K under 2 % jitter: +0.3 %) and exposed data-parallel sync (the DP
    all-reduce is a larger share of a shorter step) add the rest. v, the interleaving depth,
    is not published; we assume 8 (about one of 126 layers per virtual stage, 8 per rank).
    Tolerance: 2 % at v = 8; v = 4 still lands within 4 %.
    """
    results = {}
    for v in (4, 8):
        mfu = calibrate_mfu(Scenario.from_dict(llama_dict(8192, 32, 0.5, v)), "H100", 430.0)
        s8 = Scenario.from_dict(llama_dict(8192, 32, mfu, v))
        s16 = Scenario.from_dict(llama_dict(16384, 16, mfu, v))
        o8 = evaluate(topology_of(s8), inputs_of(s8))
        o16 = evaluate(topology_of(s16), inputs_of(s16))
        assert float(o8.achieved_tflops_per_gpu) == pytest.approx(430.0, rel=1e-5)
        results[v] = (o8, o16)
    o8, o16 = results[8]
    assert float(o16.achieved_tflops_per_gpu) == pytest.approx(400.0, rel=0.02)
    assert float(results[4][1].achieved_tflops_per_gpu) == pytest.approx(400.0, rel=0.04)

    # Which terms carry the loss: step(16K)/ (step(8K)/2) split into factors.
    total = float(o16.step_time_s) / (float(o8.step_time_s) / 2)
    bubble = float(o16.pipeline_factor / o8.pipeline_factor)
    strag = float(o16.straggler_factor / o8.straggler_factor)
    assert total > 1.05
    assert bubble > 1.04
    assert 1.0 < strag < 1.005
    assert float(o16.exposed_comm_s) >= float(o8.exposed_comm_s)
    assert np.log(bubble) / np.log(total) > 0.7


def test_published_mfu_as_direct_input_with_no_other_losses_gives_430():
    """Identity check: with no pipeline, jitter or exposed sync, MFU 430/989 is 430 TFLOP/s."""
    d = llama_dict(8192, 32, 430 / 989, 1)
    d["workload"].update(pipeline_parallel=1, tensor_parallel=8, overlap_s=1e9)
    d["accelerators"]["H100"]["jitter_cv"] = 0.0
    sc = Scenario.from_dict(d)
    assert float(evaluate(topology_of(sc), inputs_of(sc)).achieved_tflops_per_gpu) == (
        pytest.approx(430.0)
    )


def _random_inputs(rng, n):
    """n random variations of the two-site scenario (every numeric input perturbed)."""
    sc = Scenario.from_dict(two_site_dict())
    x = inputs_of(sc)
    rows = []
    for _ in range(n):
        rows.append(
            x.replace(
                gpus=rng.integers(0, 4096, 3).astype(float),
                mfu=rng.uniform(0.2, 0.7, 3),
                jitter_cv=rng.uniform(0, 0.1, 3),
                hbm_gb=rng.choice([32.0, 80.0, 141.0, 186.0], 3),
                busbw_gbps=rng.uniform(50, 800, 3),
                bandwidth_gbps=rng.uniform(1, 10_000, 1),
                route_km=rng.uniform(0, 500, 1),
                window_bytes=rng.choice([2.0**20, 2.0**24, np.inf], 1),
                streams=rng.integers(1, 16, 1).astype(float),
                handshake_rtts=rng.integers(0, 3, 1).astype(float),
                tensor_parallel=float(rng.choice([1, 2, 8])),
                pipeline_parallel=float(rng.choice([1, 4, 16])),
                microbatches=float(rng.integers(1, 64)),
                sync=float(rng.integers(0, 3)),
                batch_split=float(rng.integers(0, 2)),
                memory_fill=rng.uniform(0.3, 1.0),
                overlap_s=rng.choice([np.nan, 0.0, 0.5]),
                diloco_inner_steps=float(rng.integers(1, 200)),
                diloco_quality_penalty=rng.uniform(0, 0.3),
                stage_imbalance=rng.choice([0.0, rng.uniform(0, 0.5)]),
                load_imbalance_cv=rng.choice([0.0, rng.uniform(0, 0.4)]),
                slow_worker_fraction=rng.choice([0.0, rng.uniform(0, 0.01), rng.uniform(0, 0.5)]),
                slow_worker_slowdown=rng.uniform(1.0, 3.0),
                hidden_size=rng.choice([np.nan, 4096.0, 16384.0]),
            )
        )
    return topology_of(sc), rows


def test_vectorized_matches_plain_python_reference():
    """Two independent transcriptions of the equations agree on 300 random scenarios."""
    topo, rows = _random_inputs(np.random.default_rng(11), 300)
    out = evaluate(topo, stack_inputs(rows))
    for i, row in enumerate(rows):
        ref = evaluate_reference(topo, row)
        vec = out.take(i)
        for key, value in ref.items():
            # 1e-8: the vectorized E[max of N normals] interpolates a table (error < 2e-8
            # on E[M], times cv ≤ 0.1); the reference integrates it for each N.
            assert vec[key] == pytest.approx(value, rel=1e-8, abs=1e-9), (i, key)


def test_demo_topology_vectorized_matches_reference():
    sc = demo()
    ref = evaluate_reference(topology_of(sc), inputs_of(sc))
    vec = evaluate(topology_of(sc), inputs_of(sc)).take(())
    for key, value in ref.items():
        assert vec[key] == pytest.approx(value, rel=1e-8), key


# --- properties ---------------------------------------------------------------------------

finite = {"allow_nan": False, "allow_infinity": False}


def _eval(d):
    sc = Scenario.from_dict(d)
    return evaluate(topology_of(sc), inputs_of(sc))


@settings(max_examples=60, deadline=None)
@given(
    bw=st.floats(1, 100_000, **finite),
    factor=st.floats(1, 100, **finite),
    sync=st.sampled_from(["flat_ring", "hierarchical", "diloco"]),
    window=st.sampled_from([None, 2**20, 2**26]),
)
def test_more_link_bandwidth_never_slows_a_step(bw, factor, sync, window):
    d = two_site_dict(sync=sync)
    d["links"][0].update(bandwidth_gbps=bw, window_bytes=window)
    slow = _eval(d)
    d["links"][0]["bandwidth_gbps"] = bw * factor
    fast = _eval(d)
    assert float(fast.step_time_s) <= float(slow.step_time_s) * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    cv=st.floats(0, 0.3, **finite),
    extra=st.floats(0, 0.3, **finite),
    split=st.sampled_from(["equal", "proportional"]),
)
def test_more_jitter_never_speeds_a_step(cv, extra, split):
    d = two_site_dict(batch_split=split)
    d["accelerators"] = {
        "H100": {"jitter_cv": cv},
        "A100": {"jitter_cv": cv},
        "B200": {"jitter_cv": cv},
    }
    base = _eval(d)
    d["accelerators"]["A100"]["jitter_cv"] = cv + extra
    worse = _eval(d)
    assert float(worse.step_time_s) >= float(base.step_time_s) * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    slow_peak=st.floats(10, 989, **finite),
    slow_gpus=st.integers(32, 8192),
    fast_gpus=st.integers(32, 8192),
    cv=st.floats(0, 0.1, **finite),
)
def test_adding_a_slower_pool_under_equal_split_never_raises_per_gpu_efficiency(
    slow_peak, slow_gpus, fast_gpus, cv
):
    """Per-GPU useful throughput of H100s alone ≥ with a slower pool added (equal split)."""
    d = {
        "workload": {
            "params": 7e9,
            "tokens_per_step": 4e6,
            "tensor_parallel": 8,
            "batch_split": "equal",
        },
        "accelerators": {
            "H100": {"jitter_cv": cv},
            "SLOW": {
                "peak_tflops": slow_peak,
                "mfu": 430 / 989,
                "hbm_gb": 80,
                "scaleout_gbps": 400,
                "jitter_cv": cv,
                "mtbf_hours": 50_000,
                "price_per_gpu_hour_usd": 1.0,
            },
        },
        "pools": [
            {"site": "dc", "accelerator": "H100", "gpus": fast_gpus, "fabric_gbps_per_gpu": 400}
        ],
    }
    alone = _eval(d)
    d["pools"].append(
        {"site": "dc", "accelerator": "SLOW", "gpus": slow_gpus, "fabric_gbps_per_gpu": 400}
    )
    mixed = _eval(d)
    per_gpu_alone = float(alone.useful_flops_per_s / alone.gpus_used)
    per_gpu_mixed = float(mixed.useful_flops_per_s / mixed.gpus_used)
    assert per_gpu_mixed <= per_gpu_alone * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(s=st.floats(0, 50, **finite), k=st.floats(0, 10, **finite))
def test_value_is_linear_in_scarcity(s, k):
    sc = Scenario.from_dict(two_site_dict())
    x = inputs_of(sc)
    topo = topology_of(sc)
    v1 = float(evaluate(topo, x.replace(scarcity_multiplier=1.0)).internal_value_usd)
    vs = float(evaluate(topo, x.replace(scarcity_multiplier=s)).internal_value_usd)
    vk = float(evaluate(topo, x.replace(scarcity_multiplier=s + k)).internal_value_usd)
    assert vs == pytest.approx(s * v1, rel=1e-12, abs=1e-6)
    assert vk - vs == pytest.approx(k * v1, rel=1e-9, abs=1e-6)


def test_batch_evaluation_broadcasts_scalars_pools_and_links():
    sc = Scenario.from_dict(two_site_dict())
    x = inputs_of(sc)
    bw = np.geomspace(1, 1e5, 7)[:, None]
    out = evaluate(topology_of(sc), x.replace(bandwidth_gbps=bw))
    assert out.step_time_s.shape == (7,)
    assert np.all(np.diff(out.step_time_s) <= 1e-12)
    assert float(terms.rent_usd(5e6, 90)) == pytest.approx(float(out.rent_usd[0]))
