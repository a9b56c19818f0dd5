"""Scenario link inputs of the link term v2: rendezvous, loss, calibrated figures, ring or tree."""

import copy

import pytest

from clusters.perfmodel import Scenario, ScenarioError, evaluate, inputs_of, terms, topology_of

from .scenarios import two_site_dict


def _inter(doc):
    s = Scenario.from_dict(doc)
    return evaluate(topology_of(s), inputs_of(s))


def _with_link(**fields):
    doc = two_site_dict()
    link = doc["links"][0]
    link.pop("handshake_rtts")
    link.update(fields)
    return doc


def test_legacy_handshake_rtts_reads_as_rendezvous_rtts_and_round_trips():
    legacy = Scenario.from_dict(two_site_dict())
    assert legacy.links[0].rendezvous_rtts == 1.0
    again = Scenario.from_dict(legacy.to_dict())
    assert again == legacy
    assert "handshake_rtts" not in legacy.to_dict()["links"][0]
    same = _with_link(rendezvous_rtts=1.0, handshake_rtts=1)
    assert Scenario.from_dict(same).links[0].rendezvous_rtts == 1.0


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"rendezvous_rtts": 0.5, "handshake_rtts": 1}, "links[0].handshake_rtts"),
        ({"rendezvous_rtts": -0.5}, "links[0].rendezvous_rtts"),
        ({"handshake_rtts": 0.5}, "links[0].handshake_rtts"),
        ({"loss_rate": 1.0}, "links[0].loss_rate"),
        ({"mss_bytes": 0}, "links[0].mss_bytes"),
        ({"step_latency_us": 0}, "links[0].step_latency_us"),
        ({"usable_gbps": -1}, "links[0].usable_gbps"),
    ],
)
def test_bad_link_inputs_are_refused_with_their_path(fields, path):
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_dict(_with_link(**fields))
    assert exc.value.path == f"$.{path}"


def test_half_a_round_trip_is_between_eager_and_one_handshake():
    times = [float(_inter(_with_link(rendezvous_rtts=r)).inter_site_s) for r in (0.0, 0.5, 1.0)]
    assert times[0] < times[1] < times[2]
    assert times[1] - times[0] == pytest.approx(times[2] - times[1])


def test_loss_slows_the_link_by_the_loss_law():
    clean = float(_inter(_with_link()).inter_site_s)
    lossy = float(_inter(_with_link(loss_rate=1e-4, mss_bytes=1448)).inter_site_s)
    assert lossy > clean
    # 40 km + 20 µs: one way 216 µs; 4 flows at C·MSS/(RTT·√p) each, blended with the line
    # and window bound as the soft minimum (B^-2 + L^-2)^(-1/2).
    rtt = 2 * (40 * 4.9 + 20) * 1e-6
    loss_bound = 4 * 0.98 * 1448 / (rtt * 1e-2)  # C measured by the harness
    line_or_window = min(800e9 / 8 * 0.9, 4 * 16777216 / rtt)
    usable = terms.link_usable_bytes_per_s(800, 0.9, 16777216, 4, rtt, 1e-4, 1448)
    assert float(usable) == pytest.approx((line_or_window**-2 + loss_bound**-2) ** -0.5)
    assert float(usable) < loss_bound


def test_calibrated_figures_replace_the_derived_ones():
    base = _with_link(rendezvous_rtts=0.5)
    slow = copy.deepcopy(base)
    slow["links"][0].update({"usable_gbps": 10.0, "step_latency_us": 5000.0})
    fast = copy.deepcopy(base)
    fast["links"][0].update({"usable_gbps": 1e6, "step_latency_us": 1.0})
    t_base, t_slow, t_fast = (float(_inter(d).inter_site_s) for d in (base, slow, fast))
    assert t_fast < t_base < t_slow
    # Hierarchical, 2 sites: 2(k−1)/k · grad / U + 2(k−1) · α with the measured U and α.
    grad = 70e9 * 2
    assert t_slow == pytest.approx(grad / (10e9 / 8) + 2 * 5e-3, rel=1e-6)


def test_a_flat_ring_over_a_million_replicas_pays_a_tree_latency():
    """10⁶ ranks at 10 µs a step: 20 s as a ring, about 0.4 ms of latency as a tree."""
    ring = terms.ring_allreduce_s(1e6, 1e6, 50e9)
    best = terms.allreduce_s(1e6, 1e6, 50e9)
    assert float(ring) > 19.0
    assert float(best) < 1e-3
    # Small rank counts and large messages keep the ring.
    assert float(terms.allreduce_s(1e9, 8, 50e9)) == pytest.approx(
        float(terms.ring_allreduce_s(1e9, 8, 50e9))
    )
