"""The model's equations against the closed forms and published anchors of docs/model.md."""

import math

import numpy as np
import pytest

from clusters.perfmodel import Scenario, evaluate, inputs_of, terms, topology_of

from .scenarios import two_site_dict

GRAD_175B_FP16 = 350e9  # bytes


@pytest.mark.parametrize(
    ("tbps", "published_s"), [(6.4, 0.95), (3.2, 1.90), (0.8, 7.62), (0.1, 60.9)]
)
def test_cross_site_closed_form_reproduces_references_example(tbps, published_s):
    """docs/model.md worked example: GPT-3 175B, 350 GB fp16 gradients, DP 48 over 3 sites, eff 0.9.

    The published figures use the factor 2·47/48, so the inter-site ring has k = 48
    participants (every data-parallel rank); with k = 3 sites the same term would be 0.68× as
    large. Latency is left out, as in the example.
    """
    usable = terms.gbps_to_bytes_per_s(tbps * 1000) * 0.9
    t = float(terms.hierarchical_inter_site_s(GRAD_175B_FP16, 48, usable, 0.0))
    assert t == pytest.approx(published_s, rel=0.01)
    t_sites = float(terms.hierarchical_inter_site_s(GRAD_175B_FP16, 3, usable, 0.0))
    assert t_sites / t == pytest.approx((4 / 3) / (2 * 47 / 48))


@pytest.mark.parametrize(("tbps", "published_s"), [(6.4, 0.95), (0.8, 7.62)])
def test_flat_ring_over_48_ranks_in_full_model_matches_example(tbps, published_s):
    """The full evaluator's flat ring (16 ranks per site, 3 sites, no latency, very fast site
    fabric) puts the example's 2·47/48·350 GB on the slowest inter-site hop."""
    pools = [
        {"site": s, "accelerator": "H100", "gpus": 16, "fabric_gbps_per_gpu": 1e9}
        for s in ("a", "b", "c")
    ]
    links = [
        {"a": a, "b": b, "bandwidth_gbps": tbps * 1000, "route_km": 0, "efficiency": 0.9}
        for a, b in (("a", "b"), ("b", "c"), ("a", "c"))
    ]
    sc = Scenario.from_dict(
        {
            "workload": {
                "params": 175e9,
                "tokens_per_step": 1e6,
                "grad_bytes": GRAD_175B_FP16,
                "sync": "flat_ring",
            },
            "accelerators": {"H100": {"scaleout_gbps": 1e9}},
            "pools": pools,
            "links": links,
        }
    )
    out = evaluate(topology_of(sc), inputs_of(sc))
    # The ring's own 2·47 hop latencies (10 µs each) are on top: 0.94 ms.
    assert float(out.inter_site_s) == pytest.approx(published_s, rel=0.01)


def test_ring_allreduce_alpha_beta():
    """2(n−1)·α + 2(n−1)/n·S/B plus the base latency; one rank costs nothing."""
    t = float(terms.ring_allreduce_s(1e9, 8, 50e9, 10e-6, 8.5e-6))
    assert t == pytest.approx(8.5e-6 + 14 * 10e-6 + 14 / 8 * 1e9 / 50e9)
    assert float(terms.ring_allreduce_s(1e9, 1, 50e9)) == 0.0


def test_one_way_latency_from_route_km():
    """4.9 µs per km of fiber plus equipment latency; 10 miles is well under a millisecond."""
    assert float(terms.one_way_latency_s(16.09, 0.0)) == pytest.approx(78.8e-6, rel=1e-3)
    assert float(terms.one_way_latency_s(100, 50)) == pytest.approx(540e-6)


def test_long_link_with_small_window_is_latency_bound():
    """A 1,000 km, 400 Gbit/s link with one 4 MiB window delivers streams·W/RTT, far below
    bw·eff; more streams raise it until the line rate binds."""
    one_way = float(terms.one_way_latency_s(1000, 0))
    rtt = 2 * one_way
    line = float(terms.gbps_to_bytes_per_s(400)) * 0.9
    usable = float(terms.link_usable_bytes_per_s(400, 0.9, 4 * 2**20, 1, rtt))
    assert usable == pytest.approx(4 * 2**20 / rtt)
    assert usable < 0.1 * line
    many = float(terms.link_usable_bytes_per_s(400, 0.9, 4 * 2**20, 10_000, rtt))
    assert many == pytest.approx(line)


def test_handshake_adds_round_trips_per_collective_step():
    """Each of the 2(k−1) inter-site steps waits handshake_rtts round trips more."""
    one_way = float(terms.one_way_latency_s(30, 20))
    lat0 = float(terms.step_latency_s(one_way, 0))
    lat2 = float(terms.step_latency_s(one_way, 2))
    assert lat2 - lat0 == pytest.approx(2 * 2 * one_way)
    t0 = float(terms.hierarchical_inter_site_s(1e9, 3, 1e12, lat0))
    t2 = float(terms.hierarchical_inter_site_s(1e9, 3, 1e12, lat2))
    assert t2 - t0 == pytest.approx(2 * (3 - 1) * 2 * 2 * one_way)

    base = two_site_dict(overlap_s=0.0)
    with_hs = Scenario.from_dict(base)
    base["links"][0]["handshake_rtts"] = 0
    without = Scenario.from_dict(base)
    a = evaluate(topology_of(with_hs), inputs_of(with_hs))
    b = evaluate(topology_of(without), inputs_of(without))
    rtt = 2 * float(terms.one_way_latency_s(40, 20))
    assert float(a.inter_site_s - b.inter_site_s) == pytest.approx(2 * 1 * rtt)


def test_diloco_divides_inter_site_cost_by_inner_steps():
    """DiLoCo with H inner steps pays the hierarchical inter-site sync once per H steps."""
    hier = Scenario.from_dict(two_site_dict(sync="hierarchical"))
    inter_h = float(evaluate(topology_of(hier), inputs_of(hier)).inter_site_s)
    assert inter_h > 0
    for h in (1, 10, 500):
        sc = Scenario.from_dict(
            two_site_dict(sync="diloco", diloco_inner_steps=h, diloco_quality_penalty=0.1)
        )
        out = evaluate(topology_of(sc), inputs_of(sc))
        assert float(out.inter_site_s) == pytest.approx(inter_h / h)
        assert float(out.quality) == pytest.approx(0.9)


def test_pipeline_bubble_formula():
    """(m−1)·max stage + Σ stages over m·stage: 1 + (pp−1)/m; interleaving divides the bubble."""
    assert float(terms.pipeline_factor(16, 32)) == pytest.approx((31 + 16) / 32)
    assert float(terms.pipeline_factor(16, 32, 4)) == pytest.approx(1 + 15 / 128)
    assert float(terms.pipeline_factor(1, 7)) == 1.0


def test_exposed_communication_is_what_overlap_cannot_hide():
    assert list(terms.exposed_s(np.array([1.0, 3.0]), 2.0)) == [0.0, 1.0]


def test_goodput_llama3_anchor():
    """Llama 3: 419 interruptions in 54 days on 16,384 H100s with > 90 % effective time.

    With the catalog's 50,000 h per-GPU MTBF the cluster MTBF is ~3 h; the default 600 s
    restart cost then leaves ~95 % goodput, inside the published "> 90 %"."""
    observed_mtbf_s = 54 * 86400 / 419
    model_mtbf_s = 50_000 * 3600 / 16384
    assert model_mtbf_s == pytest.approx(observed_mtbf_s, rel=0.02)
    g = float(terms.goodput(model_mtbf_s, 600))
    assert 0.9 < g < 1.0
    assert float(terms.goodput(math.inf, 600)) == 1.0


def test_rent_over_horizon():
    """rent_usd = monthly · 12 · days / 365."""
    assert float(terms.rent_usd(1.25e9, 365)) == pytest.approx(15e9)
    assert float(terms.rent_usd(1.25e9, 0)) == 0.0
