"""Flows on a hop: the window and loss bounds scale with the parallel rings the parallelism
makes (docs/model.md, "Links"), the line rate does not."""

import copy

import numpy as np
import pytest

from clusters.perfmodel import Scenario, evaluate, evaluate_reference, inputs_of, topology_of

from .scenarios import demo, two_site_dict

TP, PP = 8, 4
FIBER_US_PER_KM = 4.9


def _scenario(sync, *, scale=1, window=4096, streams=1, loss=0.0, gbps=800.0, links=1):
    d = two_site_dict(sync=sync, overlap_s=0.0)
    assert d["workload"]["tensor_parallel"] == TP
    assert d["workload"]["pipeline_parallel"] == PP
    for pool in d["pools"]:
        pool["gpus"] *= scale
    link = d["links"][0]
    link.update(bandwidth_gbps=gbps, streams=streams, loss_rate=loss)
    if window is None:
        link.pop("window_bytes")
    else:
        link["window_bytes"] = window
    d["links"] = [copy.deepcopy(link) for _ in range(links)]
    return Scenario.from_dict(d)


def _run(sc):
    return evaluate(topology_of(sc), inputs_of(sc)).take(())


def _site_replicas(sc):
    out: dict[str, int] = {}
    for p in sc.pools:
        out[p.site] = out.get(p.site, 0) + p.gpus // (TP * PP)
    return out


def _rtt_s(sc):
    lk = sc.links[0]
    return 2.0 * (lk.route_km * FIBER_US_PER_KM + lk.latency_us) * 1e-6


def test_window_bound_doubles_with_the_replicas_per_site_until_the_line_binds():
    line = 800e9 / 8 * 0.9
    seen = []
    for scale in (1, 2, 4, 8, 16, 32):
        sc = _scenario("hierarchical", scale=scale)
        fewest = min(_site_replicas(sc).values())
        flows = 1 * TP * PP * fewest
        window_bound = flows * 4096 / _rtt_s(sc)
        got = _run(sc)
        assert got["hop_connections"] == TP * PP * fewest
        assert got["slowest_hop_bytes_per_s"] == pytest.approx(min(line, window_bound), rel=1e-12)
        seen.append(got["slowest_hop_bytes_per_s"])
    ratios = np.array(seen[1:]) / np.array(seen[:-1])
    print("hop Gbit/s by scale:", [f"{b * 8 / 1e9:.1f}" for b in seen])
    # Window-bound at first (each doubling doubles the rings), line-bound at the end.
    assert ratios[0] == pytest.approx(2.0, rel=1e-12)
    assert seen[-1] == pytest.approx(line, rel=1e-12)
    assert np.all(ratios <= 2.0 + 1e-12)


def test_hierarchical_rings_are_limited_by_the_site_with_the_fewest_replicas():
    base = _run(_scenario("hierarchical"))
    d = two_site_dict(sync="hierarchical", overlap_s=0.0)
    d["links"][0]["window_bytes"] = 4096
    d["links"][0]["streams"] = 1
    d["pools"][0]["gpus"] *= 4  # east grows; west, the smaller site, still sets the rings
    bigger_east = _run(Scenario.from_dict(d))
    assert bigger_east["hop_connections"] == base["hop_connections"] == TP * PP * 32
    assert bigger_east["slowest_hop_bytes_per_s"] == base["slowest_hop_bytes_per_s"]


def test_flat_ring_carries_one_connection_per_shard_position():
    for window, loss, gbps in ((4096, 0.0, 800.0), (None, 1e-3, 1e9)):
        flat = _run(_scenario("flat_ring", window=window, loss=loss, gbps=gbps, streams=2))
        hier = _run(_scenario("hierarchical", window=window, loss=loss, gbps=gbps, streams=2))
        diloco = _run(_scenario("diloco", window=window, loss=loss, gbps=gbps, streams=2))
        assert flat["hop_connections"] == TP * PP
        assert hier["hop_connections"] == diloco["hop_connections"] == TP * PP * 32
        # Window- (first) or loss-bound (second, the line out of reach): ∝ flows.
        ratio = hier["slowest_hop_bytes_per_s"] / flat["slowest_hop_bytes_per_s"]
        assert ratio == pytest.approx(32.0, rel=1e-9)
        assert diloco["slowest_hop_bytes_per_s"] == hier["slowest_hop_bytes_per_s"]
        if window is not None:
            assert flat["slowest_hop_bytes_per_s"] == pytest.approx(
                2 * TP * PP * window / _rtt_s(_scenario("flat_ring")), rel=1e-12
            )


def test_the_line_rate_does_not_scale_with_flows():
    flat = _run(_scenario("flat_ring", window=None))
    hier = _run(_scenario("hierarchical", window=None))
    assert flat["slowest_hop_bytes_per_s"] == hier["slowest_hop_bytes_per_s"] == 800e9 / 8 * 0.9


def test_a_hops_connections_spread_over_its_links():
    one = _run(_scenario("flat_ring"))
    two = _run(_scenario("flat_ring", links=2))
    # Window-bound: half the flows on each of two links carry what all did on one.
    assert two["slowest_hop_bytes_per_s"] == pytest.approx(one["slowest_hop_bytes_per_s"])
    one_line = _run(_scenario("flat_ring", window=None))
    two_line = _run(_scenario("flat_ring", window=None, links=2))
    assert two_line["slowest_hop_bytes_per_s"] == pytest.approx(
        2 * one_line["slowest_hop_bytes_per_s"]
    )


@pytest.mark.parametrize("sync", ["flat_ring", "hierarchical", "diloco"])
@pytest.mark.parametrize("links", [1, 2])
@pytest.mark.parametrize(("window", "loss"), [(4096, 0.0), (65536, 1e-4), (None, 1e-3)])
def test_flows_match_the_reference_evaluator(sync, links, window, loss):
    for scale in (1, 4, 64):
        sc = _scenario(sync, scale=scale, window=window, loss=loss, links=links, streams=3)
        topo, x = topology_of(sc), inputs_of(sc)
        ref = evaluate_reference(topo, x)
        vec = evaluate(topo, x).take(())
        for key, value in ref.items():
            assert vec[key] == pytest.approx(value, rel=1e-9), (scale, key)


def test_the_demo_hops_carry_tens_of_thousands_of_connections():
    """The demo's aging 400 Gbit/s links are window-bound for one connection of 2 flows, but
    the hierarchical sync puts TP·PP × the smallest campus's replicas on them: the line binds."""
    sc = demo()
    w = sc.workload
    rep = w.tensor_parallel * w.pipeline_parallel
    per_site: dict[str, int] = {}
    for p in sc.pools:
        per_site[p.site] = per_site.get(p.site, 0) + p.gpus // rep
    got = _run(sc)
    print(
        f"demo: {got['hop_connections']:,.0f} connections per hop, smallest campus "
        f"{min(per_site.values())} replicas, slowest hop "
        f"{got['slowest_hop_bytes_per_s'] * 8 / 1e9:,.0f} Gbit/s"
    )
    assert got["hop_connections"] == rep * min(per_site.values())
    aging = [lk for lk in sc.links if lk.bandwidth_gbps == 400]
    one_connection = [
        lk.streams * lk.window_bytes / (2 * (lk.route_km * FIBER_US_PER_KM + lk.latency_us) * 1e-6)
        for lk in aging
    ]
    assert all(b < 400e9 / 8 * lk.efficiency for b, lk in zip(one_connection, aging, strict=True))
    assert got["slowest_hop_bytes_per_s"] == pytest.approx(
        min(400e9 / 8 * lk.efficiency for lk in aging)
    )
