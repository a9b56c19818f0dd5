"""Stragglers: a synchronous step waits for the slowest of N workers.

Each worker's step time is ``t · (1 + cv · Z)`` with Z standard normal and iid across workers
and steps (docs/model.md, "Stragglers"). The expected slowdown of the maximum is
approximated in closed form by ``1 + cv · sqrt(2 ln N)`` (the leading term of the expected
maximum of N standard normals); 2 % jitter on 16K GPUs costs about 8.8 %.

The Monte Carlo samples the maximum directly instead of drawing N normals per step: if U is
uniform on (0, 1), the maximum of N iid standard normals has the law of ``Φ⁻¹(U^(1/N))``. So
200,000 workers over 10,000 steps need 10,000 uniforms, not 2·10⁹ normals. ``Φ⁻¹`` is
Acklam's rational approximation (relative error below 1.2e-9 over the whole range), evaluated
from the upper-tail probability ``q = 1 − U^(1/N) = −expm1(ln U / N)`` so that no precision is
lost when U^(1/N) rounds to 1 in float64.
"""

from __future__ import annotations

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
    """Expected slowdown of the max over N workers: ``1 + cv · sqrt(2 ln N)`` (dimensionless).

    docs/model.md, "Stragglers". N ≤ 1 gives 1 (nobody to wait for).
    """
    n_arr = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    out: FloatArray = 1.0 + np.asarray(cv, dtype=np.float64) * np.sqrt(2.0 * np.log(n_arr))
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
    ``steps`` steps. Dimensionless; agrees with :func:`closed_form_factor` within about 2 % for
    cv ≈ 0.02 and N from 8 to 200,000 (the closed form is a slight over-estimate).
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
