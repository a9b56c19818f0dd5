"""Stragglers: closed form against the seeded Monte Carlo (docs/model.md, "Stragglers")."""

import statistics

import numpy as np
import pytest

from clusters.perfmodel import stragglers, terms


@pytest.mark.parametrize("n", [8, 64, 1024, 16384, 200_000])
def test_closed_form_agrees_with_monte_carlo_within_2_percent(n):
    """cv = 2 % (the jitter anchor of docs/model.md); 10,000 steps, fixed seed."""
    closed = float(stragglers.closed_form_factor(0.02, n))
    mc = float(stragglers.monte_carlo_factor(0.02, n, steps=10_000, seed=7))
    assert abs(mc - closed) / closed < 0.02
    # The closed form is the leading term of E[max]; it over-states slightly.
    assert mc < closed


def test_two_percent_jitter_on_16k_gpus_costs_about_8_8_percent():
    assert float(terms.straggler_factor(0.02, 16384)) - 1 == pytest.approx(0.088, abs=0.001)


@pytest.mark.parametrize("n", [8, 64])
def test_inverse_cdf_sampler_matches_brute_force(n):
    """The sampled maximum Φ⁻¹(U^(1/N)) has the same mean as max of N drawn normals."""
    brute = stragglers.monte_carlo_factor_brute(1.0, n, steps=40_000, seed=1)
    fast = float(stragglers.monte_carlo_factor(1.0, n, steps=40_000, seed=2))
    # Standard error of the mean of the max is < 0.005 at 40k steps; allow 4 sigma.
    assert fast == pytest.approx(brute, abs=0.02)


def test_acklam_inverse_normal_matches_stdlib():
    nd = statistics.NormalDist()
    ps = np.concatenate(
        [
            np.geomspace(1e-300, 0.02, 200),
            np.linspace(0.02, 0.98, 97),
            1 - np.geomspace(1e-15, 0.02, 50),
        ]
    )
    ours = stragglers.norm_ppf(ps)
    ref = np.array([nd.inv_cdf(float(p)) for p in ps])
    # Acklam's published bound is 1.15e-9 relative.
    assert np.allclose(ours, ref, rtol=2e-9, atol=0)


def test_upper_tail_keeps_precision_beyond_float_epsilon():
    """P(Z > z) = 1e-20 is unrepresentable as 1 − p; the upper-tail form still gets z."""
    z = float(stragglers.norm_ppf_upper(1e-20))
    assert z == pytest.approx(-statistics.NormalDist().inv_cdf(1e-20), rel=1e-8)


def test_monte_carlo_is_seeded():
    a = stragglers.monte_carlo_factor(0.05, 1000, 500, seed=3)
    b = stragglers.monte_carlo_factor(0.05, 1000, 500, seed=3)
    assert float(a) == float(b)


def test_heterogeneous_step_times_wait_for_the_slow_pool():
    """A pool twice as slow dominates: mean step ≈ its own jittered maximum."""
    times = stragglers.monte_carlo_step_times([1.0, 2.0], [0.02, 0.02], [1000, 1000], 5000)
    alone = float(stragglers.monte_carlo_factor(0.02, 1000, 5000, seed=0)) * 2.0
    assert float(times.mean()) == pytest.approx(alone, rel=0.01)
