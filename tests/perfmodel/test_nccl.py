"""nccl-tests ``all_reduce_perf`` output: the parser (clusters/perfmodel/nccl.py) and the
piecewise α-β fit of its curve (clusters/perfmodel/calibration.py, fit_piecewise)."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from clusters.perfmodel import calibration, link, nccl
from clusters.perfmodel.nccl import (
    NcclParseError,
    parse_all_reduce_perf,
    parse_avg_bus_bandwidth,
    parse_ranks,
)

DATA = Path(__file__).parent / "data"
CURRENT = (DATA / "nccl_all_reduce_perf_2x8_h100.txt").read_text()
LEGACY = (DATA / "nccl_all_reduce_perf_legacy.txt").read_text()


def test_current_format_every_size_with_both_placements():
    rows = parse_all_reduce_perf(CURRENT)
    assert len(rows) == 31
    assert [r.size_bytes for r in rows] == [8 * 2**i for i in range(31)]
    first, last = rows[0], rows[-1]
    assert (first.count, first.dtype, first.redop, first.root) == (2, "float", "sum", -1)
    assert first.time_us == pytest.approx(51.32)
    assert first.in_place is not None
    assert first.in_place.time_us == pytest.approx(50.87)
    assert last.size_bytes == 8589934592
    assert (last.time_us, last.algbw_gbps, last.busbw_gbps) == (294187.0, 29.20, 54.75)
    assert last.in_place is not None
    assert (last.in_place.time_us, last.in_place.busbw_gbps) == (294120.0, 54.76)
    assert last.out_of_place.wrong == 0


def test_bus_bandwidth_is_the_all_reduce_factor_times_algbw():
    """Consistency of the sample itself: busbw = algbw·2(n−1)/n with n = 16 ranks, and
    algbw = size/time; the parser returns the printed figures unchanged."""
    for r in parse_all_reduce_perf(CURRENT)[12:]:
        assert r.busbw_gbps == pytest.approx(r.algbw_gbps * 2 * 15 / 16, rel=0.01)
        assert r.algbw_gbps == pytest.approx(r.size_bytes / r.time_us / 1e3, rel=0.01)


def test_legacy_format_without_root_and_with_float_error():
    rows = parse_all_reduce_perf(LEGACY)
    assert [r.size_bytes for r in rows] == [1048576 * 4**i for i in range(5)]
    assert all(r.root is None for r in rows)
    assert rows[0].out_of_place.wrong == pytest.approx(5e-7)
    assert rows[-1].busbw_gbps == pytest.approx(271.68)


def test_nccl_info_lines_after_the_header_are_skipped():
    header, _, body = CURRENT.partition("           8 ")
    chatter = "node-a01:6899:6913 [0] NCCL INFO comm 0x55 rank 0 nranks 16 - Init COMPLETE\n"
    rows = parse_all_reduce_perf(header + chatter + "           8 " + body)
    assert len(rows) == 31


def test_validation_off_reads_na_as_none_and_out_of_place_only_lines_parse():
    text = (
        "#       size         count      type   redop    root     time   algbw   busbw #wrong\n"
        "     1048576        262144     float     sum      -1    90.10   11.64   20.37    N/A\n"
    )
    (row,) = parse_all_reduce_perf(text)
    assert row.out_of_place.wrong is None
    assert row.in_place is None
    assert row.as_dict()["in_place"] is None


def test_average_bus_bandwidth_footer():
    assert parse_avg_bus_bandwidth(CURRENT) == pytest.approx(20.3012)
    assert parse_avg_bus_bandwidth("no footer") is None


H = "#  size  count  type  redop  root  time  algbw  busbw  #wrong\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\nworld\n", "no all_reduce_perf result header"),
        (
            H + "# Avg bus bandwidth : 0\n",
            "no data line",
        ),
        (
            H + "8 2 float sum -1 1.0 0.0\n",
            "expected 13 columns",
        ),
        (
            H + "8 2 float sum -1 x 0 0 0\n",
            "'x' is not a number",
        ),
        (
            H + "8 2 float sum -1 nan 0 0 0\n",
            "finite",
        ),
    ],
)
def test_malformed_input_is_refused_with_the_line(text, message):
    with pytest.raises(NcclParseError, match=message):
        parse_all_reduce_perf(text)


def test_ranks_are_read_from_the_device_list_of_either_layout():
    assert parse_ranks(CURRENT) == 16
    assert parse_ranks(LEGACY) == 2
    # Concatenated runs of the same ranks count them once; no preamble, no ranks known.
    assert parse_ranks(CURRENT + CURRENT) == 16
    assert parse_ranks(H) == 0


# --- the piecewise fit ----------------------------------------------------------------------

ROWS = parse_all_reduce_perf(CURRENT)
SIZES = [r.size_bytes for r in ROWS]
TIMES = [r.time_us * 1e-6 for r in ROWS]
RANKS = 16
POWERS = [2**k for k in range(3, 34)]  # 8 B – 8 GiB, as the sample


def _errors(regimes, sizes, times, ranks):
    """|relative error| of stored regimes' prediction, computed here from the ring itself."""
    out = []
    for size, t in zip(sizes, times, strict=True):
        (r,) = [r for r in regimes if r.min_bytes <= size][-1:]
        pred = link.pipelined_ring_allreduce_s(size, ranks, r.usable_bytes_per_s, r.step_latency_s)
        out.append(abs(float(pred) - t) / t)
    return np.array(out)


def _two_regimes(noise=0.0):
    small = np.array(POWERS) < 2**20
    alpha = np.where(small, 2e-6, 20e-6)
    usable = np.where(small, 10e9, 50e9)
    t = link.pipelined_ring_allreduce_s(np.array(POWERS, float), RANKS, usable, alpha)
    rng = np.random.default_rng(7)
    return t * (1.0 + noise * rng.uniform(-1.0, 1.0, len(t)))


def test_the_sample_needs_several_regimes_and_the_piecewise_fit_meets_its_bounds():
    candidates = calibration.piecewise_candidates(SIZES, TIMES, RANKS)
    assert [len(c) for c in candidates] == [1, 2, 3, 4]
    figures = []
    for regimes in candidates:
        err = _errors(regimes, SIZES, TIMES, RANKS)
        figures.append((float(np.median(err)), float(err.max())))
        print(f"{len(regimes)} regime(s): median {figures[-1][0]:.1%}, max {figures[-1][1]:.1%}")
    medians = [m for m, _ in figures]
    assert medians == sorted(medians, reverse=True)  # each regime added helps
    assert figures[0][0] > 0.15  # one α-β ring misses the sample by far
    fit = calibration.fit_piecewise(SIZES, TIMES, RANKS)
    assert fit.median_rel_error <= 0.05
    assert fit.max_rel_error <= 0.15
    # The rule: the fewest regimes whose every point is within 10 %.
    fewest = next(i for i, (_, worst) in enumerate(figures) if worst <= 0.10)
    assert fit.regimes == candidates[fewest]
    assert (fit.median_rel_error, fit.max_rel_error) == pytest.approx(figures[fewest])
    assert (fit.single.median_rel_error, fit.single.max_rel_error) == pytest.approx(figures[0])
    # The model's figures: U of the largest sizes (nccl-tests' bus bandwidth there, 54.75 GB/s
    # at 8 GiB), α of the smallest (8 B take 51.32 µs over 2·15 steps).
    assert fit.usable_bytes_per_s == pytest.approx(ROWS[-1].busbw_gbps * 1e9, rel=0.02)
    assert fit.step_latency_s == pytest.approx(ROWS[0].time_us * 1e-6 / 30, rel=0.05)
    assert fit.usable_bytes_per_s > fit.single.usable_bytes_per_s
    assert fit.predict(SIZES) == pytest.approx(
        calibration.predict_piecewise([r.as_dict() for r in fit.regimes], SIZES, RANKS)
    )


def test_regimes_are_contiguous_and_cover_every_size():
    sizes = sorted(set(SIZES))
    for regimes in calibration.piecewise_candidates(SIZES, TIMES, RANKS):
        assert regimes[0].min_bytes == sizes[0]
        assert regimes[-1].max_bytes == sizes[-1]
        for lower, upper in itertools.pairwise(regimes):
            # the next regime starts at the very next measured size
            assert sizes.index(upper.min_bytes) == sizes.index(lower.max_bytes) + 1
        covering = [[r for r in regimes if r.min_bytes <= s <= r.max_bytes] for s in SIZES]
        assert all(len(c) == 1 for c in covering)
        assert sum(r.points for r in regimes) == len(SIZES)
        assert all(r.points >= calibration.MIN_REGIME_SIZES for r in regimes)
        which = calibration.regime_index([r.as_dict() for r in regimes], SIZES)
        assert [regimes[int(i)] for i in which] == [c[0] for c in covering]


def test_sizes_between_and_beyond_the_measured_ones_have_a_regime():
    regimes = [r.as_dict() for r in calibration.fit_piecewise(SIZES, TIMES, RANKS).regimes]
    starts = [r["min_bytes"] for r in regimes]
    assert list(calibration.regime_index(regimes, [1, starts[1] - 1, starts[1], 2**40])) == [
        0,
        0,
        1,
        len(regimes) - 1,
    ]


@pytest.mark.parametrize("noise", [0.0, 0.003])
def test_two_known_regimes_are_recovered(noise):
    fit = calibration.fit_piecewise(POWERS, _two_regimes(noise), RANKS)
    assert len(fit.regimes) == 2
    small, large = fit.regimes
    assert (small.max_bytes, large.min_bytes) == (2**19, 2**20)
    assert small.step_latency_s == pytest.approx(2e-6, rel=0.01)
    assert small.usable_bytes_per_s == pytest.approx(10e9, rel=0.01)
    assert large.step_latency_s == pytest.approx(20e-6, rel=0.01)
    assert large.usable_bytes_per_s == pytest.approx(50e9, rel=0.01)
    assert (fit.step_latency_s, fit.usable_bytes_per_s) == (
        small.step_latency_s,
        large.usable_bytes_per_s,
    )
    assert fit.max_rel_error <= noise * 1.5 + 1e-9
    assert fit.single.max_rel_error > calibration.REGIME_TOLERANCE


def test_one_alpha_beta_curve_stays_one_regime():
    t = link.pipelined_ring_allreduce_s(np.array(POWERS, float), RANKS, 40e9, 5e-6)
    printed = np.array([float(f"{x * 1e6:.4g}") * 1e-6 for x in t])  # 4 digits, as printed
    fit = calibration.fit_piecewise(POWERS, printed, RANKS)
    assert len(fit.regimes) == 1
    assert fit.step_latency_s == pytest.approx(5e-6, rel=0.01)
    assert fit.usable_bytes_per_s == pytest.approx(40e9, rel=0.01)
    grid = calibration.fit_allreduce(POWERS, printed, RANKS)
    assert fit.usable_bytes_per_s == pytest.approx(grid.usable_bytes_per_s, rel=0.005)


def test_too_few_sizes_for_a_split_fit_one_regime():
    # Two sizes: one ring through both; five: still too few for two regimes of three.
    for k in (2, 5):
        fit = calibration.fit_piecewise(SIZES[-k:], TIMES[-k:], RANKS)
        assert len(fit.regimes) == 1
    exact = calibration.fit_piecewise(SIZES[-2:], TIMES[-2:], RANKS)
    assert exact.max_rel_error < 1e-9


@pytest.mark.parametrize(
    ("sizes", "times", "ranks", "message"),
    [
        ([1024], [1e-5], 16, "at least two"),
        ([1024, 1024], [1e-5, 2e-5], 16, "two distinct"),
        ([1024, 2048], [0.0, 1e-5], 16, "positive"),
        ([1024, 2048], [1e-5, float("nan")], 16, "positive"),
        ([1024, 2048], [1e-5, 2e-5], 1, "two ranks"),
        ([2**20, 2**21, 2**22], [1e-3, 1e-3, 1e-3], 16, "no bandwidth"),
    ],
)
def test_degenerate_input_is_refused(sizes, times, ranks, message):
    with pytest.raises(calibration.CalibrationError, match=message):
        calibration.fit_piecewise(sizes, times, ranks)


def test_fit_nccl_is_the_piecewise_fit_of_the_run():
    fit = calibration.fit_nccl(ROWS, RANKS)
    assert fit == calibration.fit_piecewise(SIZES, TIMES, RANKS)
    large = calibration.fit_nccl(ROWS, RANKS, min_bytes=64 << 20)
    assert (large.points, len(large.regimes)) == (8, 1)
    assert large.max_rel_error < 0.01  # from 64 MiB up one ring follows the curve


def test_a_long_run_is_split_at_coarse_places_then_at_the_exact_size():
    # Thousands of sizes (a linear-step run): the search is bounded, the boundary still exact.
    sizes = np.unique(np.round(np.geomspace(8, 8 << 30, 3000)))
    assert len(sizes) > 10 * calibration.MAX_SPLIT_POINTS
    small = sizes < 2**20
    times = link.pipelined_ring_allreduce_s(
        sizes, RANKS, np.where(small, 10e9, 50e9), np.where(small, 2e-6, 20e-6)
    )
    fit = calibration.fit_piecewise(sizes, times, RANKS)
    small_fit, large_fit = fit.regimes
    assert small_fit.max_bytes == sizes[small].max()
    assert large_fit.min_bytes == sizes[~small].min()
    assert (small_fit.step_latency_s, large_fit.step_latency_s) == pytest.approx((2e-6, 20e-6))
    assert fit.usable_bytes_per_s == pytest.approx(50e9)
    assert fit.max_rel_error < 1e-9


# --- bounds: what a measurement can be, what a fit may conclude -----------------------------


def test_the_sample_still_fits_four_regimes_within_its_figures():
    fit = calibration.fit_piecewise(SIZES, TIMES, RANKS)
    assert len(fit.regimes) == 4
    assert fit.median_rel_error == pytest.approx(0.025, abs=0.0005)
    assert fit.max_rel_error == pytest.approx(0.069, abs=0.0005)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{nccl.MAX_SIZE_BYTES + 1} 2 float sum -1 1.0 0 0 0", "above 1,125,899,906,842,624 B"),
        ("1" + "0" * 5000 + " 2 float sum -1 1.0 0 0 0", "size 10000000000000000... B is above"),
        ("\u00b2 2 float sum -1 1.0 0 0 0", "not an integer"),
        (f"8 2 float sum -1 {nccl.MAX_TIME_US * 10:g} 0 0 0", "above 1e\\+09 µs"),
    ],
)
def test_a_line_beyond_what_a_run_prints_is_refused(line, message):
    with pytest.raises(NcclParseError, match=message):
        parse_all_reduce_perf(H + line + "\n")


def test_zero_byte_rows_and_the_largest_bounds_are_read():
    rows = parse_all_reduce_perf(
        H + f"0 0 float sum -1 0.00 0 0 0\n{nccl.MAX_SIZE_BYTES} 2 float sum -1 1e9 0 0 0\n"
    )
    assert [(r.size_bytes, r.time_us) for r in rows] == [(0, 0.0), (2**50, 1e9)]


def _scaled(size_factor=1, time_factor=1.0, k=None):
    return [s * size_factor for s in SIZES[:k]], [t * time_factor for t in TIMES[:k]]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        # Each of these used to end in ZeroDivisionError, OverflowError or LinAlgError.
        (_scaled(size_factor=10**290), "message sizes must be 1 – 1,125,899,906,842,624 B"),
        (_scaled(size_factor=10**390), "finite numbers"),
        (_scaled(time_factor=1e-300), "times must be 0.001 – 1e\\+09 µs"),
        (_scaled(time_factor=1e300), "times must be 0.001 – 1e\\+09 µs"),
        # Finite, and once stored as 1.5e28 Gbit/s.
        (_scaled(size_factor=10**20), "message sizes must be"),
        # Within the bounds, but no network: 2^50 B at the sample's times, 10^7 × its latency.
        (_scaled(size_factor=2**17), "fitted usable throughput .* outside 0 – 1,000,000 Gbit/s"),
        (_scaled(time_factor=1e7, k=14), "fitted step latency .* outside 0 – 10,000,000 µs"),
    ],
)
def test_measurements_out_of_bounds_are_refused(points, message):
    with pytest.raises(calibration.CalibrationError, match=message):
        calibration.fit_piecewise(*points, RANKS)


def test_the_bounds_themselves_fit():
    # The sample's times at 2^10 × its sizes (8 KiB – 8 TiB): a fast but possible network.
    fit = calibration.fit_piecewise(*_scaled(size_factor=2**10, time_factor=2**10), RANKS)
    assert fit.usable_gbps == pytest.approx(
        calibration.fit_piecewise(SIZES, TIMES, RANKS).usable_gbps
    )


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        (1, "two ranks"),
        (calibration.MAX_RANKS + 1, "at most 10,000,000 ranks"),
        (3_000_000_000, "at most"),
    ],
)
def test_ranks_are_bounded(ranks, message):
    with pytest.raises(calibration.CalibrationError, match=message):
        calibration.fit_piecewise(SIZES, TIMES, ranks)
    with pytest.raises(calibration.CalibrationError, match=message):
        calibration.check_ranks(ranks)
    calibration.check_ranks(calibration.MAX_RANKS)


def test_a_numerical_failure_of_either_fit_is_a_calibration_error(monkeypatch):
    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge in Linear Least Squares")

    monkeypatch.setattr(np.linalg, "lstsq", singular)
    with pytest.raises(calibration.CalibrationError, match=r"numerically .*SVD did not converge"):
        calibration.fit_piecewise(SIZES, TIMES, RANKS)

    def overflowing(*args, **kwargs):
        raise OverflowError("math range error")

    monkeypatch.setattr(link, "pipelined_ring_allreduce_s", overflowing)
    with pytest.raises(calibration.CalibrationError, match=r"numerically .*math range error"):
        calibration.fit_allreduce(SIZES, TIMES, RANKS)


def test_the_ring_fit_refuses_implausible_figures_too():
    with pytest.raises(calibration.CalibrationError, match="fitted usable throughput"):
        calibration.fit_allreduce(*_scaled(size_factor=2**17), RANKS)
