"""Stragglers: a synchronous step waits for the slowest of N workers.

Each worker's step time is ``t · (1 + cv · Z)`` with Z standard normal and iid across workers
and steps (docs/model.md, "Stragglers"). The expected slowdown is ``1 + cv · E[M_N]`` with
``M_N`` the maximum of N standard normals. The model uses the exact ``E[M_N]``
(:func:`expected_max_normal`): Simpson quadrature of ``∫₀^∞ (1 − Φ^N) dx − ∫_{−∞}^0 Φ^N dx``
tabulated once over N (every integer up to 1,024, then 6,000 geometric nodes to 10¹⁵) and
interpolated linearly in sqrt(ln N) (error below 2e-8 absolute). The closed form
``1 + cv · sqrt(2 ln N)`` (:func:`closed_form_factor`) is kept only as an upper bound
(``E[M_N] ≤ sqrt(2 ln N)`` for every N): it over-states the exact value by 10–20 % of the
excess at N from 10³ to 10⁵ (2 % jitter on 16K GPUs: 8.8 % closed form, 7.9 % exact).

Persistent slow workers and load imbalance (:func:`slowdown`) are not jitter: a worker that is
always s times slower, or a data-parallel replica that always gets more work, slows every step
by the same amount. They reproduce the production slowdowns of ByteDance's what-if analysis,
which iid jitter cannot (docs/model.md, "Stragglers").

The Monte Carlo samples the maximum directly instead of drawing N normals per step: if U is
uniform on (0, 1), the maximum of N iid standard normals has the law of ``Φ⁻¹(U^(1/N))``. So
200,000 workers over 10,000 steps need 10,000 uniforms, not 2·10⁹ normals. ``Φ⁻¹`` is
Acklam's rational approximation (relative error below 1.2e-9 over the whole range), evaluated
from the upper-tail probability ``q = 1 − U^(1/N) = −expm1(ln U / N)`` so that no precision is
lost when U^(1/N) rounds to 1 in float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Acklam's coefficients for the inverse normal CDF (P. J. Acklam, "An algorithm for computing
# the inverse normal cumulative distribution function", 2003).
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def _tail(q: FloatArray) -> FloatArray:
    """Acklam's tail branch: Φ⁻¹(q) for small q (negative result)."""
    r = np.sqrt(-2.0 * np.log(q))
    num = ((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5]
    den = (((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + 1.0
    out: FloatArray = num / den
    return out


def _central(p: FloatArray) -> FloatArray:
    """Acklam's central branch: Φ⁻¹(p) for p in [P_LOW, 1 − P_LOW]."""
    s = p - 0.5
    r = s * s
    num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * s
    den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
    out: FloatArray = num / den
    return out


def norm_ppf_upper(q: npt.ArrayLike) -> FloatArray:
    """Return z with P(Z > z) = q for a standard normal Z, i.e. Φ⁻¹(1 − q).

    Taking the upper-tail probability keeps full precision for q far below float64's epsilon,
    which is where the maximum of 10⁵ normals lives. Acklam's approximation, relative error
    < 1.2e-9. q must lie in (0, 1).
    """
    q_arr = np.asarray(q, dtype=np.float64)
    low = np.minimum(q_arr, 1.0 - q_arr)
    # Evaluate both branches on clipped inputs so neither produces warnings, then select.
    tail = _tail(np.clip(low, 1e-300, _P_LOW))
    central = _central(np.clip(1.0 - q_arr, _P_LOW, 1.0 - _P_LOW))
    # For q small the answer is the positive tail, −Φ⁻¹(q); for q near 1 it is Φ⁻¹(1 − q).
    tail_signed = np.where(q_arr < 0.5, -tail, tail)
    out: FloatArray = np.where(low < _P_LOW, tail_signed, central)
    return out


def norm_ppf(p: npt.ArrayLike) -> FloatArray:
    """Inverse standard normal CDF Φ⁻¹(p) for p in (0, 1) (Acklam, numpy only).

    By symmetry Φ⁻¹(p) = −Φ⁻¹(1 − p), so no ``1 − p`` is formed and tiny p keep full precision.
    """
    return -norm_ppf_upper(p)


def closed_form_factor(cv: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """Upper bound of the expected slowdown over N workers: ``1 + cv · sqrt(2 ln N)``.

    docs/model.md, "Stragglers": the leading term of E[max of N normals], never below the
    exact value (:func:`exact_factor`); not used for the model's answer. N ≤ 1 gives 1.
    """
    n_arr = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    out: FloatArray = 1.0 + np.asarray(cv, dtype=np.float64) * np.sqrt(2.0 * np.log(n_arr))
    return out


# --- exact expected maximum --------------------------------------------------------------

_X_LOW, _X_HIGH, _X_POINTS = -10.0, 10.0, 4001  # Simpson grid: h = 0.005
_TABLE_INTEGERS = 1024
_TABLE_MAX_N = 1e15
_TABLE_GEOMETRIC = 6000


def _log_cdf_grid() -> tuple[FloatArray, FloatArray]:
    """x on the Simpson grid and ln Φ(x), accurate in both tails (math.erfc)."""
    x = np.linspace(_X_LOW, _X_HIGH, _X_POINTS)
    upper = np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in x])  # Q(x) = 1 − Φ(x)
    lower = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])  # Φ(x)
    with np.errstate(divide="ignore"):
        log_cdf = np.where(x > 0.0, np.log1p(-upper), np.log(lower))
    return x, log_cdf


def expected_max_quadrature(n: npt.ArrayLike) -> FloatArray:
    """E[max of n iid standard normals] by Simpson quadrature (n ≥ 1, any real n).

    ``E[M] = ∫₀^∞ (1 − Φ(x)^n) dx − ∫_{−∞}^0 Φ(x)^n dx`` on [−10, 10] with h = 0.005 (both
    tails beyond are below 1e-9 for n ≤ 10¹⁵). Costs 4,001 exponentials per n: use
    :func:`expected_max_normal` for arrays of scenarios.
    """
    n_arr = np.maximum(np.atleast_1d(np.asarray(n, dtype=np.float64)), 1.0)
    x, log_cdf = _log_cdf_grid()
    weights = np.ones(_X_POINTS)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    weights *= (x[1] - x[0]) / 3.0
    out = np.empty(n_arr.shape)
    for start in range(0, n_arr.size, 256):
        chunk = n_arr.ravel()[start : start + 256]
        power = np.exp(chunk[:, None] * log_cdf[None, :])  # Φ(x)^n
        # Φ^n jumps at x = 0 between the two integrals; x = 0 is a grid node, so split there.
        mid = _X_POINTS // 2
        w_low = weights[: mid + 1].copy()
        w_high = weights[mid:].copy()
        w_low[-1] = w_high[0] = (x[1] - x[0]) / 3.0
        low = (-power[:, : mid + 1]) @ w_low
        high = (1.0 - power[:, mid:]) @ w_high
        out.ravel()[start : start + 256] = low + high
    return out.reshape(np.shape(np.asarray(n)))


@functools.lru_cache(maxsize=1)
def _table() -> tuple[FloatArray, FloatArray]:
    """(sqrt(ln N) nodes, E[M_N]) for interpolation; computed once per process (~0.4 s).

    In w = sqrt(ln N) the expected maximum is nearly linear (≈ √2·w minus a slowly varying
    term), so linear interpolation there is 15× more accurate than in ln N."""
    nodes = np.concatenate(
        [
            np.arange(1.0, _TABLE_INTEGERS + 1.0),
            np.geomspace(_TABLE_INTEGERS, _TABLE_MAX_N, _TABLE_GEOMETRIC + 1)[1:],
        ]
    )
    values = expected_max_quadrature(nodes)
    values[0] = 0.0  # E[M_1] = E[Z] = 0 exactly (quadrature leaves ~1e-16)
    return np.sqrt(np.log(nodes)), values


def expected_max_normal(n: npt.ArrayLike) -> FloatArray:
    """Exact E[max of n iid standard normals], vectorized (n < 1 counts as 1 → 0).

    Table of :func:`expected_max_quadrature` interpolated in sqrt(ln n) (exact at the integers
    up to 1,024; error < 2e-8 elsewhere). Beyond 10¹⁵ the closed form's growth is added to the
    last node (monotone, and the bound's error there is far below the inputs' own).
    """
    root_nodes, values = _table()
    root_n = np.sqrt(np.log(np.maximum(np.asarray(n, dtype=np.float64), 1.0)))
    out: FloatArray = np.interp(root_n, root_nodes, values)
    beyond = root_n > root_nodes[-1]
    if np.any(beyond):
        extra = math.sqrt(2.0) * (root_n - float(root_nodes[-1]))
        out = np.where(beyond, values[-1] + extra, out)
    return out


def exact_factor(cv: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """Expected slowdown of the max over N workers with iid jitter: ``1 + cv · E[M_N]``."""
    out: FloatArray = 1.0 + np.asarray(cv, dtype=np.float64) * expected_max_normal(n)
    return out


def slowdown(
    cv: npt.ArrayLike,
    workers: npt.ArrayLike,
    slow_fraction: npt.ArrayLike = 0.0,
    slow_factor: npt.ArrayLike = 1.0,
    imbalance_cv: npt.ArrayLike = 0.0,
    replicas: npt.ArrayLike = 1.0,
) -> FloatArray:
    """Expected step-time multiplier of a synchronous group (dimensionless, ≥ 1).

    - jitter: ``J = 1 + cv · E[M_N]`` over the N workers;
    - persistent slow workers: a fraction f of workers always runs ``slow_factor`` (s ≥ 1)
      times slower. The group holds k = f·N of them; with k ≥ 1 the step waits for
      ``S = s · (1 + cv · E[M_K])``, the slow workers' own maximum (K = k rounded, ≥ 1).
      The multiplier is ``J + min(1, k) · max(0, S − J)`` (for k < 1, the expected share
      of steps whose group holds one, linear in k);
    - load imbalance: each of the D data-parallel replicas gets a share of the work with
      coefficient of variation ``imbalance_cv`` (uneven sequence lengths); the step waits for
      the heaviest: ``× (1 + imbalance_cv · E[M_D])``.
    """
    n = np.maximum(np.asarray(workers, dtype=np.float64), 1.0)
    cv_arr = np.asarray(cv, dtype=np.float64)
    jitter = 1.0 + cv_arr * expected_max_normal(n)
    out: FloatArray = jitter
    k = np.asarray(slow_fraction, dtype=np.float64) * n
    if np.any(k > 0.0):  # skipped (same result) when no worker is slow: saves two passes
        slow_max = expected_max_normal(np.maximum(np.round(k), 1.0))  # whole workers
        slow = np.asarray(slow_factor, dtype=np.float64) * (1.0 + cv_arr * slow_max)
        out = jitter + np.minimum(k, 1.0) * np.maximum(slow - jitter, 0.0)
    imbalance_arr = np.asarray(imbalance_cv, dtype=np.float64)
    if np.any(imbalance_arr > 0.0):
        out = out * (1.0 + imbalance_arr * expected_max_normal(replicas))
    return out


def sample_max_normal(n: npt.ArrayLike, size: int, rng: np.random.Generator) -> FloatArray:
    """Draw ``size`` samples of the maximum of n iid standard normals (inverse CDF of the max).

    Uses max ~ Φ⁻¹(U^(1/n)) with the upper tail ``q = −expm1(ln U / n)``. ``n`` broadcasts
    against a trailing axis of length ``size``.
    """
    n_arr = np.asarray(n, dtype=np.float64)[..., None]
    u = rng.random((*n_arr.shape[:-1], size))
    # U = 0 has probability ~2⁻⁵³; nudge it so ln U stays finite.
    u = np.maximum(u, np.finfo(np.float64).tiny)
    q = -np.expm1(np.log(u) / n_arr)
    return norm_ppf_upper(q)


def monte_carlo_factor(
    cv: npt.ArrayLike,
    n: npt.ArrayLike,
    steps: int,
    seed: int = 0,
) -> FloatArray:
    """Seeded Monte Carlo of the mean straggler slowdown ``E[max_i (1 + cv·Z_i)]``.

    Samples the per-step maximum over n workers directly (see module docstring), averages over
    ``steps`` steps. Dimensionless; converges to :func:`exact_factor` (tests: within 1 % of
    the excess ``cv·E[M_N]`` at 20,000 steps), not to the closed-form bound.
    """
    rng = np.random.default_rng(seed)
    z_max = sample_max_normal(n, steps, rng)
    out: FloatArray = np.mean(1.0 + np.asarray(cv, dtype=np.float64)[..., None] * z_max, axis=-1)
    return out


def monte_carlo_factor_brute(cv: float, n: int, steps: int, seed: int = 0) -> float:
    """Brute-force Monte Carlo: draw ``steps × n`` normals and average the per-step maximum.

    Only for small n (memory is steps·n floats); tests use it to check the inverse-CDF path.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((steps, n))
    return float(np.mean(1.0 + cv * z.max(axis=1)))


def monte_carlo_step_times(
    base_s: npt.ArrayLike,
    cv: npt.ArrayLike,
    n: npt.ArrayLike,
    steps: int,
    seed: int = 0,
) -> FloatArray:
    """Per-step times (s) of a heterogeneous synchronous step: ``max_p base_p·(1 + cv_p·M_p)``.

    Pools p (last axis of the inputs) each have n_p workers with jitter cv_p and jitter-free
    compute time base_p (s); M_p is the max of n_p normals, sampled per step. Returns shape
    (steps,). Used to check the model's closed-form heterogeneous straggler rule.
    """
    rng = np.random.default_rng(seed)
    base = np.atleast_1d(np.asarray(base_s, dtype=np.float64))
    cv_arr = np.atleast_1d(np.asarray(cv, dtype=np.float64))
    z_max = sample_max_normal(np.atleast_1d(np.asarray(n, dtype=np.float64)), steps, rng)
    out: FloatArray = np.max(base[:, None] * (1.0 + cv_arr[:, None] * z_max), axis=0)
    return out
