"""The link term against a real all-reduce measured by the harness (bench/allreduce_harness).

Reads bench/data/allreduce_measurements.csv (or the file named by ALLREDUCE_CSV, which
``make validate`` sets to a fresh measurement), fits the transport's four constants, and checks
the predicted step time of every measurement. Targets (issue "Performance model v2"): median
error ≤ 5 %, max ≤ 15 %, over the Reno rows (the loss law is a loss-based TCP law). The BBR rows
are reported, not held to the targets: docs/model.md, "Links", says why.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from clusters.perfmodel import Scenario, calibration, evaluate, inputs_of, link, topology_of

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "bench" / "data" / "allreduce_measurements.csv"
REPEATS = ROOT / "bench" / "data" / "allreduce_lossy_repeats.csv"


def _csv_path() -> Path:
    given = os.environ.get("ALLREDUCE_CSV")
    if given and Path(given).exists():
        return Path(given)
    return COMMITTED


def _repeats() -> list[dict[str, str]]:
    return list(
        csv.DictReader(
            line for line in REPEATS.read_text().splitlines() if not line.startswith("#")
        )
    )


def _config(row) -> tuple[int, float, float]:
    return int(row["ranks"]), float(row["delay_ms"]), float(row["loss"])


@pytest.fixture(scope="module")
def run():
    """The measurements as one run of the harness wrote them."""
    return calibration.read_harness_csv(_csv_path().read_text())


@pytest.fixture(scope="module")
def runs(run):
    """Row index → the medians (s) of that lossy Reno configuration in every run: this run
    first, then the other runs of bench/data/allreduce_lossy_repeats.csv. Empty for a fresh
    measurement (``make validate``), whose configurations those runs did not measure."""
    if _csv_path() != COMMITTED:
        return {}
    repeats = _repeats()
    lossy = (np.asarray(run["congestion_control"]) == "reno") & (run["loss"] > 0)
    out = {}
    for i in np.flatnonzero(lossy):
        key = _config({k: run[k][i] for k in ("ranks", "delay_ms", "loss")})
        others = [float(r["step_ms_median"]) / 1e3 for r in repeats if _config(r) == key]
        out[int(i)] = [float(run["step_ms_median"][i]) / 1e3, *others]
    return out


def _with_step_medians(run, rows, medians_s):
    """A copy of the run whose ``rows`` have these step medians (s)."""
    out = {k: np.array(v, copy=True) for k, v in run.items()}
    out["step_ms_median"][rows] = np.asarray(medians_s) * 1e3
    return out


@pytest.fixture(scope="module")
def data(run, runs):
    """What the model is checked against: the run, with each lossy configuration's step time
    the median of its medians over every run (docs/model.md, "Loss": one run's lossy medians
    move by up to a fifth, the lossless ones by well under 1 %)."""
    rows = sorted(runs)
    return _with_step_medians(run, rows, [np.median(runs[i]) for i in rows])


@pytest.fixture(scope="module")
def reno(data):
    return np.asarray(data["congestion_control"]) == "reno"


@pytest.fixture(scope="module")
def fitted(data, reno):
    return calibration.fit_transport(data, mask=reno)


def _summary(label, err):
    a = np.abs(err)
    print(
        f"\n{label}: {len(a)} measurements, median |error| {np.median(a) * 100:.2f} %, "
        f"max {a.max() * 100:.2f} %"
    )


def test_the_committed_grid_covers_what_the_model_claims(data, reno):
    """Delay, rate, size, rank count, slow rank and loss all vary (a check of the data)."""
    assert set(data["ranks"][reno]) == {2.0, 3.0, 4.0}
    assert len(set(data["delay_ms"][reno])) >= 3
    assert len(set(data["rate_mbps"][reno])) >= 2
    # The quick grid (``make validate``) keeps two sizes; the committed one has three.
    assert len(set(data["size_bytes"][reno])) >= (3 if _csv_path() == COMMITTED else 2)
    assert set(data["slow_factor"][reno]) >= {1.0, 3.0}
    assert np.any(data["loss"][reno] > 0)
    # The emulator kept its schedule: packets late by well under the smallest delay, on average.
    assert np.median(data["emulator_late_ms"]) < 0.2


def test_step_time_within_targets(data, run, runs, reno, fitted):
    """The targets (median ≤ 5 %, max ≤ 15 %) on every Reno row, and on the lossless rows
    alone; the lossy rows are held to the 15 % bound (BBR rows are reported only).

    The lossy rows are the medians over every run of their configuration (the ``data``
    fixture); the committed run's own lossy medians are printed beside them. Measured on the
    six runs: the lossy rows alone miss by a median 6.2 %, over the 5 % target
    (docs/model.md, "Loss"); the law is off by up to ±12 % in ways no run's noise explains.
    """
    err = calibration.relative_errors(data, fitted)
    lossless = reno & (data["loss"] == 0)
    lossy = reno & (data["loss"] > 0)
    print(f"\nfitted transport: {fitted}")
    if runs:
        alone = calibration.relative_errors(run, calibration.fit_transport(run, mask=reno))
        _summary("Reno, lossy, this run alone (reported)", alone[lossy])
        print(f"lossy rows: medians over {len(next(iter(runs.values())))} runs")
    _summary("Reno, all (targets: median 5 %, max 15 %)", err[reno])
    _summary("Reno, lossless (targets: median 5 %, max 15 %)", err[lossless])
    _summary("Reno, lossy (max 15 %; median reported)", err[lossy])
    for i in np.flatnonzero(lossy):
        n, d = int(data["ranks"][i]), float(data["delay_ms"][i])
        print(f"  lossy {n} ranks, {d:g} ms, loss {data['loss'][i]:g}: {err[i] * 100:+.1f} %")
    if np.any(~reno):
        _summary("BBR (reported only)", err[~reno])
    # A fresh run's lossy rows are one run's medians: held to the bound one run meets against
    # the others (test_lossy_medians_move_between_runs), not to the target, and left out of
    # the targets on all rows.
    for rows in (reno, lossless) if runs else (lossless,):
        a = np.abs(err[rows])
        assert np.median(a) <= 0.05
        assert a.max() <= 0.15
    assert np.abs(err[lossy]).max() <= (0.15 if runs else 0.25)


def test_lossy_medians_move_between_runs(run, runs, reno, fitted):
    """Every lossy configuration measured in several runs (this grid's and those of
    bench/data/allreduce_lossy_repeats.csv): how far one configuration's median moves between
    runs; the model fitted on the medians over the runs against each run alone; and, leaving
    each run out of the fit in turn, against the run it did not see.

    Measured: one configuration's medians spread by up to about a fifth between runs, so a
    single run's lossy rows can miss the 15 % bound by noise alone (docs/model.md, "Loss").
    """
    if not runs:
        pytest.skip("a fresh measurement: its lossy configurations have no other runs")
    index = sorted(runs)
    medians = np.array([runs[i] for i in index])  # configurations × runs
    assert medians.shape[1] >= 4  # every configuration in every run
    spread = (medians.max(axis=1) - medians.min(axis=1)) / np.median(medians, axis=1)
    predicted = calibration.predict_harness(run, fitted)[index]
    each = predicted[:, None] / medians - 1.0
    held_out = []
    for r in range(medians.shape[1]):
        others = _with_step_medians(run, index, np.median(np.delete(medians, r, axis=1), axis=1))
        t = calibration.fit_transport(others, mask=reno)
        held_out += list(calibration.predict_harness(run, t)[index] / medians[:, r] - 1.0)
    print(
        f"\nspread of one configuration's medians over {medians.shape[1]} runs: "
        f"median {np.median(spread) * 100:.1f} %, max {spread.max() * 100:.1f} %"
    )
    _summary("lossy, fitted on the medians over the runs, against each run", each.ravel())
    _summary("lossy, each run from constants fitted without it", np.array(held_out))
    assert spread.max() > 0.10  # the runs really differ: the figures above are not one run
    for err in (np.abs(each), np.abs(held_out)):
        assert np.median(err) <= 0.10
        assert err.max() <= 0.25


def test_the_own_burst_queue_is_not_paid(data, reno, fitted):
    """A loss-based sender dumps a whole phase's burst into the deep buffer, yet the rendezvous
    does not wait behind it: charging the measured queue to every step's round trip breaks the
    rows the model matches without it.

    In a ring the ready notice for the next segment leaves once the previous one has arrived,
    by which time the data ahead of it on the same link has drained (docs/model.md, "Links").
    """
    rows = reno & (data["loss"] == 0) & (data["ranks"] == 2) & (data["size_bytes"] >= 512 << 10)
    queue_s = np.asarray(data["queue_ms"]) / 1e3
    # The burst queue is there: tens to hundreds of milliseconds on every one of these rows.
    assert np.all(queue_s[rows] > 1e-3)
    median_queue_ms = np.median(queue_s[rows]) * 1e3
    print(f"\nmedian of the mean queues on these rows: {median_queue_ms:.1f} ms")
    measured = np.asarray(data["step_ms_median"]) / 1e3
    plain = np.abs(calibration.predict_harness(data, fitted) - measured) / measured
    # A two-rank all-reduce has two steps; each would pay the queue once per round trip.
    queued = np.abs(calibration.predict_harness(data, fitted) + 2.0 * queue_s - measured) / measured
    _summary("2 ranks, >= 512 KiB, no queue term", plain[rows])
    _summary("2 ranks, >= 512 KiB, measured queue paid per step", queued[rows])
    assert np.median(plain[rows]) < 0.01
    assert np.median(queued[rows]) > 0.15


def test_constants_fitted_on_two_and_three_ranks_predict_four(data, reno):
    """Out of sample: the 4-rank rows are predicted from constants fitted without them."""
    four = data["ranks"] == 4
    held_out = calibration.fit_transport(data, mask=reno & ~four)
    err = np.abs(calibration.relative_errors(data, held_out)[reno & four & (data["loss"] == 0)])
    _summary("4 ranks, lossless, from constants fitted on 2-3 ranks", err)
    assert np.median(err) <= 0.05
    assert err.max() <= 0.15


def test_the_model_takes_the_measured_loss_constant(runs, fitted):
    """link.MATHIS_C, which scores every lossy link, is the constant these measurements fit."""
    if not runs:
        pytest.skip("a fresh measurement: the model's constant comes from the committed runs")
    assert fitted.mathis_c == pytest.approx(link.MATHIS_C, abs=0.005)


def _harness_link_scenario(data, i, efficiency):
    """Harness row ``i`` as a scenario: two sites of one GPU each, joined by its link."""
    return Scenario.from_dict(
        {
            "schema": "landlord.scenario/1",
            "name": "harness row",
            "workload": {
                "params": 1e6,
                "tokens_per_step": 1,
                "grad_bytes": float(data["size_bytes"][i]),
                "tensor_parallel": 1,
                "pipeline_parallel": 1,
                "microbatches": 1,
                "sync": "hierarchical",
            },
            "pools": [
                {"site": site, "accelerator": "H100", "gpus": 1, "fabric_gbps_per_gpu": 400}
                for site in ("a", "b")
            ],
            "links": [
                {
                    "a": "a",
                    "b": "b",
                    "route_km": 0,
                    "streams": 1,
                    "bandwidth_gbps": float(data["rate_mbps"][i]) / 1e3,
                    "latency_us": float(data["delay_ms"][i]) * 1e3,
                    "efficiency": efficiency,
                    "rendezvous_rtts": 0.5,
                    "loss_rate": float(data["loss"][i]),
                    "mss_bytes": float(data["mtu_bytes"][i]) - 52.0,
                }
            ],
            "economics": {"reference_accelerator": "H100", "rent_per_month_usd": 1},
        }
    )


def test_the_scoring_model_reproduces_two_ranks_given_the_measured_transport(data, reno, fitted):
    """``model.evaluate`` itself, the code that scores reclaim decisions (not the harness's own
    predictor), on every 2-rank Reno row of 512 KiB and up without compute, as two sites of one
    GPU joined by that row's link with the measured transport (rendezvous 0.5, the fitted
    efficiency, ``link.MATHIS_C``, the link's MSS): its inter-site all-reduce is the measured
    step. With two ranks the ring's segments do not matter (``2α + S/U``); the harness's 0.4 ms
    of software per step has no scenario input and is left out. With three or more ranks the
    scenario's one-segment ring exposes every latency, slower than gloo's two segments
    (``test_pipelining_is_needed``)."""
    rows = np.flatnonzero(
        reno & (data["ranks"] == 2) & (data["size_bytes"] >= 512 << 10) & (data["compute_ms"] == 0)
    )
    measured = np.asarray(data["step_ms_median"])[rows] / 1e3
    scored = []
    for i in rows:
        sc = _harness_link_scenario(data, i, fitted.efficiency)
        scored.append(float(evaluate(topology_of(sc), inputs_of(sc)).inter_site_s))
    err = np.array(scored) / measured - 1.0
    lossy = data["loss"][rows] > 0
    _summary("model.evaluate, 2 ranks, lossless", err[~lossy])
    _summary("model.evaluate, 2 ranks, lossy (medians over the runs)", err[lossy])
    assert np.any(lossy)
    assert np.median(np.abs(err[~lossy])) <= 0.02
    assert np.abs(err[~lossy]).max() <= 0.05
    assert np.abs(err[lossy]).max() <= 0.15


def test_one_round_trip_per_step(fitted):
    """The rendezvous: about half a round trip on top of the one-way delay (one RTT in all)."""
    assert fitted.rendezvous_rtts == pytest.approx(0.5, abs=0.1)


def test_pipelining_is_needed(data, reno, fitted):
    """With one segment (the classic α-β ring) the 3- and 4-rank bandwidth-bound rows are
    overpredicted: the measured latency hides behind the other segment's transfer."""
    classic = calibration.Transport(**{**fitted.__dict__, "segments": 1})
    rows = reno & (data["loss"] == 0) & (data["ranks"] >= 3) & (data["size_bytes"] >= 4 << 20)
    pipelined = np.abs(calibration.relative_errors(data, fitted)[rows])
    plain = calibration.relative_errors(data, classic)[rows]
    _summary("classic ring, 3-4 ranks, 4 MiB", plain)
    assert np.all(plain > 0)  # too slow: latency counted where it overlaps
    assert plain.max() > 0.15
    assert np.median(pipelined) < np.median(np.abs(plain)) / 2


def test_the_loss_law_beats_ignoring_loss(data, reno, fitted):
    lossy = reno & (data["loss"] > 0)
    blind = calibration.Transport(**{**fitted.__dict__, "mathis_c": 1e9})
    with_law = np.abs(calibration.relative_errors(data, fitted)[lossy])
    without = np.abs(calibration.relative_errors(data, blind)[lossy])
    assert np.median(with_law) < np.median(without)


def test_the_loss_bound_blends_with_the_line_rather_than_capping_it(data, runs, reno):
    """Soft minimum ``(B^−k + L^−k)^(−1/k)`` of the line and the loss bound, C refitted for each
    k: the hard minimum (k large) and the two costs added (k = 1) both fit the lossy rows worse
    than the blend the model uses (link.LOSS_BLEND), out of sample too (each row predicted from
    a C fitted without it)."""
    if not runs:
        pytest.skip("a fresh measurement: the blend was chosen on the committed runs' medians")
    lossy = reno & (data["loss"] > 0)
    medians = {}
    for k in (1.0, 1.5, link.LOSS_BLEND, 3.0, 64.0):
        err = np.abs(calibration.relative_errors(data, calibration.fit_transport(data, reno, 2, k)))
        held_out = []
        for i in np.flatnonzero(lossy):
            others = reno.copy()
            others[i] = False
            t = calibration.fit_transport(data, others, 2, k)
            held_out.append(abs(calibration.relative_errors(data, t)[i]))
        label = "hard minimum" if k == 64.0 else f"k = {k:g}"
        _summary(f"lossy, {label}", err[lossy])
        _summary(f"lossy, {label}, each row out of sample", np.array(held_out))
        medians[k] = np.median(held_out)
    assert medians[link.LOSS_BLEND] < medians[64.0]
    assert medians[link.LOSS_BLEND] < medians[1.0]


# Linux: RTO = srtt + max(4·rttvar, 200 ms); three duplicate ACKs trigger a fast retransmit.
RTO_MIN_S = 0.2
DUPACKS = 3


def expected_loss_cost_s(data, fitted, regrowth):
    """Per all-reduce, the expected time lost to packet loss on one link, from TCP's rules only.

    A link carries V = 2(n−1)/n · S bytes, m = V/MSS packets, in 2(n−1) steps of two segments
    (bursts), each announced by a one-packet ready notice. A lost packet followed by at least
    three more of its burst is repaired by a fast retransmit (one round trip; with
    ``regrowth``, plus the halved window's regrowth at one packet per round trip back to the
    bandwidth-delay product, BDP/8 round trips); a loss among a burst's last three packets, or
    of a notice, waits for the timer, RTO = RTT + 200 ms. Nothing is fitted.
    """
    f = {k: np.asarray(v, dtype=np.float64) for k, v in data.items() if k != "congestion_control"}
    n, p = f["ranks"], f["loss"]
    rtt = 4.0 * f["delay_ms"] / 2e3
    mss = f["mtu_bytes"] - 52.0
    packets = 2.0 * (n - 1.0) / n * f["size_bytes"] / mss
    bursts = 2.0 * (n - 1.0) * 2.0
    timeouts = bursts * (1.0 - (1.0 - p) ** DUPACKS) + bursts * p
    fast = np.maximum(packets * p - bursts * (1.0 - (1.0 - p) ** DUPACKS), 0.0)
    bdp_packets = f["rate_mbps"] * 1e6 / 8.0 * fitted.efficiency * rtt / mss
    per_fast = rtt * (1.0 + (bdp_packets / 8.0 if regrowth else 0.0))
    out: np.ndarray = timeouts * (RTO_MIN_S + rtt) + fast * per_fast
    return out


def test_an_expected_cost_per_loss_fits_worse_than_the_loss_law(data, reno, fitted):
    """The lossy rows against the expected cost of each loss (fast retransmit or timeout) added
    to the lossless step: printed beside the steady-state law, which fits them better."""
    lossy = reno & (data["loss"] > 0)
    measured = np.asarray(data["step_ms_median"]) / 1e3
    lossless = calibration.Transport(**{**fitted.__dict__, "mathis_c": np.inf})
    base = calibration.predict_harness(data, lossless)
    f = {k: np.asarray(v, dtype=np.float64) for k, v in data.items() if k != "congestion_control"}
    packets = 2.0 * (f["ranks"] - 1.0) / f["ranks"] * f["size_bytes"] / (f["mtu_bytes"] - 52.0)
    hit = 1.0 - (1.0 - f["loss"]) ** packets
    print(f"\nP(at least one loss per link per all-reduce): {np.round(hit[lossy], 2)}")
    law = np.abs(calibration.relative_errors(data, fitted)[lossy])
    _summary("lossy, steady-state loss law (C fitted)", law)
    for regrowth in (False, True):
        cost = expected_loss_cost_s(data, fitted, regrowth)
        err = np.abs((base + cost - measured) / measured)[lossy]
        label = "fast retransmit + window regrowth" if regrowth else "fast retransmit = 1 RTT"
        _summary(f"lossy, expected cost per loss ({label}, timeouts)", err)
        assert np.median(err) > np.median(law)


def test_pipelined_ring_closed_forms():
    s, u, a = 8e6, 1e8, 1e-3
    # One segment: the classic α-β ring.
    assert link.pipelined_ring_allreduce_s(s, 4, u, a, 1) == pytest.approx(6 * (a + s / 4 / u))
    # Two ranks: latency and transfer add, whatever the segments.
    for p in (1, 2, 8):
        assert link.pipelined_ring_allreduce_s(s, 2, u, a, p) == pytest.approx(2 * a + s / u)
    # Bandwidth-bound: only two latencies are exposed.
    assert link.pipelined_ring_allreduce_s(s, 4, u, 1e-6, 2) == pytest.approx(
        2 * 1e-6 + 1.5 * s / u
    )
    assert link.pipelined_ring_allreduce_s(s, 1, u, a, 2) == 0.0


def test_tree_beats_ring_at_scale_only():
    u, a = 50e9, 10e-6
    small = link.allreduce_s(1e9, 8, u, a)
    assert small == pytest.approx(link.pipelined_ring_allreduce_s(1e9, 8, u, a))
    million = link.allreduce_s(1e6, 1e6, u, a)
    assert million == pytest.approx(link.tree_allreduce_s(1e6, 1e6, u, a))
    assert million < 1e-3 < link.pipelined_ring_allreduce_s(1e6, 1e6, u, a)


def test_usable_throughput_takes_the_binding_bound():
    line = 1.25e9  # 10 Gbit/s
    assert link.usable_bytes_per_s(line, 0.9, np.inf, 1, 0.01) == pytest.approx(line * 0.9)
    assert link.usable_bytes_per_s(line, 1.0, 1e6, 2, 0.01) == pytest.approx(2e8)
    # The loss bound blends with the line: (B^-2 + L^-2)^(-1/2).
    mathis = link.MATHIS_C * 1448 / (0.01 * np.sqrt(1e-4))
    blend = (line**-2 + mathis**-2) ** -0.5
    assert link.usable_bytes_per_s(line, 1.0, np.inf, 1, 0.01, 1e-4) == pytest.approx(blend)
    blend3 = (line**-2 + (3 * mathis) ** -2) ** -0.5
    assert link.usable_bytes_per_s(line, 1.0, np.inf, 3, 0.01, 1e-4) == pytest.approx(blend3)
    # Equal bounds: each alone would give B; blended, B/√2.
    equal = link.usable_bytes_per_s(mathis, 1.0, np.inf, 1, 0.01, 1e-4)
    assert equal == pytest.approx(mathis / np.sqrt(2))
    # With the hard minimum (k large) the least bound wins.
    hard = link.usable_bytes_per_s(line, 1.0, np.inf, 1, 0.01, 1e-4, loss_blend=200.0)
    assert hard == pytest.approx(mathis)
    # No loss, zero RTT: no cap but the line.
    assert link.usable_bytes_per_s(line, 1.0, 1e6, 1, 0.0, 0.0) == pytest.approx(line)


def test_predicted_vs_measured_is_drawn(data, reno, fitted, tmp_path):
    """The chart of docs/model.md (ALLREDUCE_PLOT=path writes it there instead)."""
    from clusters.perfmodel.plot import plot_predicted_vs_measured

    predicted = calibration.predict_harness(data, fitted)
    measured = np.asarray(data["step_ms_median"]) / 1e3
    groups = [
        f"{cc}, {'lossy' if loss > 0 else 'lossless'}"
        for cc, loss in zip(data["congestion_control"], data["loss"], strict=True)
    ]
    out = Path(os.environ.get("ALLREDUCE_PLOT") or tmp_path / "validation.png")
    plot_predicted_vs_measured(
        list(measured),
        list(predicted),
        groups,
        out,
        title="gloo all-reduce step time over emulated links",
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
