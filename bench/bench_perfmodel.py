"""Benchmark of the performance model (prints figures, targets and PASS/MISS; exits 0).

    python bench/bench_perfmodel.py

1. Vectorized evaluation of a batch of randomized scenarios of the demo topology (6 pools,
   3 sites, 3 links), against a plain-Python loop over a sample of the same scenarios and
   against a floor: one numpy multiply-add pass over the same pool arrays.
2. Straggler Monte Carlo, 200,000 GPUs × 10,000 steps, with its agreement with the exact
   expected maximum (and how far the closed-form bound is).
3. Break-even search (uniform link bandwidth) for the demo scenario, and a whole assessment
   (which now also finds every flip, per link and per generation) for scale.
4. A decision with its uncertainty: 10,000 draws of the unknowns × every placement of the demo,
   valued, with the tornado; beside a plain numpy pass over the same (draws × placements ×
   pools) arrays.

Times are the best of several runs (wall clock, time.perf_counter), single process.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clusters.perfmodel import (  # noqa: E402
    Scenario,
    assess,
    candidate_placements,
    evaluate,
    evaluate_reference,
    inputs_of,
    topology_of,
)
from clusters.perfmodel.breakeven import link_bandwidth_break_even  # noqa: E402
from clusters.perfmodel.model import Inputs  # noqa: E402
from clusters.perfmodel.placement import placement_inputs  # noqa: E402
from clusters.perfmodel.stragglers import (  # noqa: E402
    closed_form_factor,
    exact_factor,
    monte_carlo_factor,
)
from clusters.perfmodel.uncertainty import DEFAULT_RANGES, decide  # noqa: E402

DEMO = ROOT / "examples" / "scenarios" / "demo_metro.json"
BATCH = 1_000_000
LOOP_SAMPLE = 2_000


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def random_batch(base: Inputs, n: int, seed: int = 0) -> Inputs:
    """n scenarios: every pool, link and economic input perturbed independently."""
    rng = np.random.default_rng(seed)
    p = base.gpus.shape[-1]
    lk = base.bandwidth_gbps.shape[-1]
    return base.replace(
        gpus=np.floor(base.gpus * rng.uniform(0.0, 1.5, (n, p))),
        mfu=np.clip(base.mfu * rng.uniform(0.7, 1.3, (n, p)), 0.05, 1.0),
        jitter_cv=rng.uniform(0.0, 0.08, (n, p)),
        busbw_gbps=base.busbw_gbps * rng.uniform(0.5, 1.5, (n, p)),
        bandwidth_gbps=base.bandwidth_gbps * rng.uniform(0.1, 10.0, (n, lk)),
        route_km=base.route_km * rng.uniform(0.5, 3.0, (n, lk)),
        sync=rng.integers(0, 3, n).astype(np.float64),
        batch_split=rng.integers(0, 2, n).astype(np.float64),
        scarcity_multiplier=rng.uniform(0.5, 20.0, n),
        rent_per_month_usd=rng.uniform(1e8, 3e9, n),
    )


def bench_vectorized() -> None:
    sc = Scenario.from_dict(__import__("json").loads(DEMO.read_text()))
    topo = topology_of(sc)
    x = random_batch(inputs_of(sc), BATCH)
    evaluate(topo, x)  # warm-up
    t_vec = best_of(lambda: evaluate(topo, x), 3)
    rate = BATCH / t_vec

    rows = [x.take(i) for i in range(LOOP_SAMPLE)]
    t_loop = best_of(lambda: [evaluate_reference(topo, r) for r in rows], 2)
    per_loop = t_loop / LOOP_SAMPLE
    loop_rate = 1.0 / per_loop

    # Check the two evaluators agree on the sample (the loop is the same model).
    vec = evaluate(topo, x)
    worst = 0.0
    for i, r in enumerate(rows[:200]):
        ref = evaluate_reference(topo, r)["step_time_s"]
        got = float(vec.step_time_s[i])
        if np.isfinite(ref):
            worst = max(worst, abs(got - ref) / ref)

    def floor() -> object:
        return x.gpus * x.peak_tflops + x.mfu

    t_floor = best_of(floor, 5)
    print("1. Vectorized evaluation (demo topology: 6 pools, 3 sites, 3 links)")
    print(f"   batch                     {BATCH:,} randomized scenarios")
    print(
        f"   vectorized                {t_vec * 1e3:,.0f} ms  = {rate:,.0f} scenarios/s"
        f"   target >= 1,000,000/s  {verdict(rate >= 1e6)}"
    )
    print(
        f"   plain Python loop         {per_loop * 1e6:,.1f} us/scenario = {loop_rate:,.0f}"
        f" scenarios/s (sample {LOOP_SAMPLE:,})"
    )
    print(f"   vectorized / loop         {rate / loop_rate:,.0f}x faster")
    print(
        f"   floor: one numpy FMA pass {t_floor * 1e3:,.1f} ms over the ({BATCH:,} x 6) pool"
        f" arrays; full model = {t_vec / t_floor:,.0f}x the floor"
    )
    print(f"   agreement vectorized vs loop on 200: max rel. diff of step time {worst:.1e}")


def bench_stragglers() -> None:
    n, steps = 200_000, 10_000
    monte_carlo_factor(0.02, n, steps, seed=0)
    t = best_of(lambda: monte_carlo_factor(0.02, n, steps, seed=0), 5)
    mc = float(monte_carlo_factor(0.02, n, steps, seed=0))
    exact = float(exact_factor(0.02, n))
    closed = float(closed_form_factor(0.02, n))
    # Agreement on the straggler excess cv·E[M], the part the Monte Carlo estimates.
    diff = abs((mc - 1) - (exact - 1)) / (exact - 1)
    print("2. Straggler Monte Carlo (inverse CDF of the maximum)")
    print(
        f"   {n:,} GPUs x {steps:,} steps    {t * 1e3:,.2f} ms   target <= 1 s  {verdict(t <= 1.0)}"
    )
    print(
        f"   MC excess {mc - 1:.5f} vs exact {exact - 1:.5f}: {diff * 100:.2f} % apart"
        f"   target <= 1 %  {verdict(diff <= 0.01)}   (closed-form bound {closed - 1:.5f})"
    )


def bench_break_even() -> None:
    sc = Scenario.from_dict(__import__("json").loads(DEMO.read_text()))
    places = candidate_placements(sc)
    link_bandwidth_break_even(sc, places)
    t = best_of(lambda: link_bandwidth_break_even(sc, places), 10)
    t_assess = best_of(lambda: assess(sc), 5)
    print("3. Break-even search (demo, uniform link bandwidth over [1 Gbit/s, 1 Pbit/s])")
    print(
        f"   {len(places)} placements x 3 grids of 64   {t * 1e3:,.1f} ms   target <= 50 ms"
        f"  {verdict(t <= 0.05)}"
    )
    print(
        f"   whole assessment (placements, valuation, all break-evens, explanation)"
        f" {t_assess * 1e3:,.1f} ms"
    )


def bench_uncertainty() -> None:
    sc = Scenario.from_dict(__import__("json").loads(DEMO.read_text()))
    samples = 10_000
    decide(sc, samples=200)  # warm-up (the straggler table is built once per process)
    t = best_of(lambda: decide(sc, samples=samples), 3)
    places = candidate_placements(sc)
    rows = samples + 1 + 2 * len(DEFAULT_RANGES)
    evaluations = rows * len(places)
    x = placement_inputs(sc, places)
    gpus = np.broadcast_to(x.gpus, (rows, *x.gpus.shape)).copy()
    peak = np.broadcast_to(x.peak_tflops, gpus.shape).copy()
    mfu = np.broadcast_to(x.mfu, gpus.shape).copy()

    def floor() -> object:
        return gpus * peak + mfu

    t_floor = best_of(floor, 5)
    d = decide(sc, samples=samples)
    print("4. Decision with uncertainty (demo: 10,000 draws of 9 unknowns, tornado)")
    print(
        f"   {samples:,} draws x {len(places)} placements = {evaluations:,} evaluations"
        f"   {t * 1e3:,.0f} ms = {evaluations / t:,.0f} evaluations/s   target <= 1 s"
        f"  {verdict(t <= 1.0)}"
    )
    print(
        f"   floor: one numpy FMA pass {t_floor * 1e3:,.1f} ms over the same"
        f" ({rows:,} x {len(places)} x {x.gpus.shape[-1]}) pool arrays; decision ="
        f" {t / t_floor:,.0f}x the floor"
    )
    print(
        f"   P(reclaim beats renting) {d.probability_reclaim:.1%};"
        f" top of the tornado: {d.tornado[0].knob}"
    )


def main() -> int:
    print(f"numpy {np.__version__}, Python {sys.version.split()[0]}")
    bench_vectorized()
    bench_stragglers()
    bench_break_even()
    bench_uncertainty()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
