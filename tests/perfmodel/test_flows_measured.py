"""Do parallel TCP flows on one link add up? The model's flow scaling against measurements.

``link.usable_bytes_per_s`` multiplies the window bound ``window / RTT`` and the loss bound
``C · MSS / (RTT · √p)`` by the flows on a link and caps or blends them with the shared line
(docs/model.md, "Links", "Flows"). bench/allreduce_harness/flows.py measured K = 1, 2, 4, 8
parallel Reno connections (plain sockets) on one emulated link, 20 ms one way, 160 Mbit/s, each
configuration three times, interleaved; bench/data/flows_measurements.csv holds every run. Each
check takes the median over the repeats of the *aggregate* goodput (all timed bytes over the
first to the last byte of any flow: what a collective step, which ends with its last flow,
sees) and prints the median and largest error.

What was measured (the figures the checks print; bench/data/flows_measurements.csv):

* **window-bound** (each receiver's ``SO_RCVBUF`` 48 KiB, no loss): one flow 10.43 Mbit/s, an
  effective window of 50.9 KiB over the 40 ms round trip; K = 2, 4, 8 carry 1.999, 3.988,
  7.976 times that, and the model with that window is within 0.3 %. The three repeats agree
  within 0.2 %, so :data:`WINDOW_TOLERANCE` = 2 % holds the law tightly and leaves room only
  for the emulator's timing.
* **loss-bound** (1 % random loss, default windows): 18.6, 41.0, 77.6, 127.8 Mbit/s for
  K = 1, 2, 4, 8: 2.20 and 4.17 times one flow at K = 2 and 4, and at K = 8, 0.86 of
  min(8 × one flow, line · efficiency), where the line starts to bind. The flows add up.
  Against the model the per-flow constant is higher than ``link.MATHIS_C`` = 0.98 (fitted on
  gloo's bursts): 1.04 for one flow, 1.08–1.14 per flow at K = 2, 4; and the soft minimum
  k = ``link.LOSS_BLEND`` = 2 is too pessimistic near the line (K = 8: model 105 Mbit/s,
  measured 128, hard minimum 140; k = 4 is within 2.5 % there, printed below). The model is
  below every measurement, by 6.3 % (K = 1) and 16–18 % (K = 2–8): it is conservative for
  steady bulk flows, not exact.
  Single runs of one configuration lie up to 19 % from their median (K = 4: 63, 78, 86 Mbit/s;
  K = 8: 104, 128, 140), so a median of three is good to roughly 10 %: :data:`LOSS_GROWTH_TOLERANCE`
  (aggregate within 25 % of K × one flow capped by the line) and :data:`LOSS_MODEL_TOLERANCE`
  (model within 25 %, never above the measurement by more than the noise) are the measured
  deviations (14 %, 18 %) plus that noise; a law off by a factor (flows that do not add up:
  K = 8 at one flow's rate would be 87 % off) fails them.
* **line-bound** (no loss, default windows): K = 1 159.10 Mbit/s, efficiency 0.9944 (the
  payload share of a 9,000-byte packet, 0.9942); K = 8 155.35 Mbit/s: eight flows overflow the
  8 MiB buffer (about 1,600 retransmits a run) and carry 2.4 % less, never more.
  :data:`LINE_TOLERANCE` = 5 % allows that loss; the aggregate must not exceed the line.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from clusters.perfmodel import link

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "flows_measurements.csv"


@pytest.fixture(scope="module")
def runs() -> list[dict[str, str]]:
    lines = DATA.read_text().splitlines()
    return list(csv.DictReader(line for line in lines if not line.startswith("#")))


@pytest.fixture(scope="module")
def medians(runs) -> dict[tuple[str, float, int], dict[str, float]]:
    """(kind, loss, flows) → the medians over the repeats of the aggregate and the per-flow
    sum (bytes/s), and how many repeats there were."""
    grouped: dict[tuple[str, float, int], list[dict[str, str]]] = defaultdict(list)
    for r in runs:
        grouped[(r["kind"], float(r["loss"]), int(r["flows"]))].append(r)
    return {
        key: {
            "aggregate": statistics.median(float(r["aggregate_mbps"]) for r in rs) * 1e6 / 8,
            "sum": statistics.median(float(r["flow_mbps_sum"]) for r in rs) * 1e6 / 8,
            "repeats": len(rs),
        }
        for key, rs in grouped.items()
    }


@pytest.fixture(scope="module")
def link_of(runs) -> dict[str, float]:
    """The emulated link (one for every run): line (bytes/s), base RTT (s), MSS (bytes)."""
    (rate,) = {float(r["rate_mbps"]) for r in runs}
    (delay,) = {float(r["delay_ms"]) for r in runs}
    (mtu,) = {int(r["mtu_bytes"]) for r in runs}
    return {"line": rate * 1e6 / 8, "rtt": 2 * delay / 1e3, "mss": mtu - 52.0, "mtu": mtu}


@pytest.fixture(scope="module")
def efficiency(medians, link_of) -> float:
    """The line-bound control's single flow over the line: the efficiency the model's line
    bound uses here (headers: MSS/MTU = 0.994 of every packet is payload)."""
    return medians[("line", 0.0, 1)]["aggregate"] / link_of["line"]


def _errors(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    errs = [abs(pred / meas - 1.0) for meas, pred in pairs]
    return statistics.median(errs), max(errs)


def test_every_configuration_was_repeated(medians):
    for key, m in medians.items():
        assert m["repeats"] >= 3, key


def test_line_bound_flows_do_not_raise_the_line(medians, link_of, efficiency):
    """(c) Without loss or a window cap, eight flows carry what one does: the line."""
    one = medians[("line", 0.0, 1)]["aggregate"]
    eight = medians[("line", 0.0, 8)]["aggregate"]
    line = link_of["line"]
    print(
        f"\nline-bound: K=1 {one * 8 / 1e6:.2f} Mbit/s, K=8 {eight * 8 / 1e6:.2f} Mbit/s "
        f"of a {line * 8 / 1e6:.0f} Mbit/s line; efficiency {efficiency:.4f} "
        f"(MSS/MTU = {link_of['mss'] / link_of['mtu']:.4f})"
    )
    assert abs(efficiency - link_of["mss"] / link_of["mtu"]) < 0.01
    assert eight <= line * 1.001
    assert eight <= one * 1.01  # K does not raise the aggregate
    assert eight >= one * (1.0 - LINE_TOLERANCE)


def test_window_bound_flows_add_up(medians, link_of, efficiency):
    """(a) With each flow's window capped, K flows carry K times one flow, and the model with
    the measured single-flow window predicts the aggregate."""
    one = medians[("window", 0.0, 1)]["aggregate"]
    window = one * link_of["rtt"]  # the effective window of one flow, in the model's terms
    print(f"\nwindow-bound: effective single-flow window {window / 1024:.1f} KiB")
    pairs = []
    for k in (1, 2, 4, 8):
        meas = medians[("window", 0.0, k)]["aggregate"]
        pred = float(
            link.usable_bytes_per_s(
                link_of["line"], efficiency, window, k, link_of["rtt"], mss_bytes=link_of["mss"]
            )
        )
        pairs.append((meas, pred))
        print(
            f"  K={k}: {meas * 8 / 1e6:7.2f} Mbit/s = {meas / one:.3f} × K=1; "
            f"model {pred * 8 / 1e6:7.2f} ({pred / meas - 1:+.1%})"
        )
        assert abs(meas / one / k - 1.0) < WINDOW_TOLERANCE, k
    median, worst = _errors(pairs[1:])
    print(f"  model error K=2..8: median {median:.1%}, max {worst:.1%}")
    assert worst < WINDOW_TOLERANCE


def _loss_model(k, p, link_of, efficiency, blend=link.LOSS_BLEND, c=link.MATHIS_C) -> float:
    return float(
        link.usable_bytes_per_s(
            link_of["line"],
            efficiency,
            math.inf,
            k,
            link_of["rtt"],
            p,
            link_of["mss"],
            mathis_c=c,
            loss_blend=blend,
        )
    )


def test_loss_bound_flows_add_up_until_the_line(medians, link_of, efficiency):
    """(b) With random loss and default windows, K flows carry about K times one flow until
    the line binds; the model (K × Mathis' bound, C = link.MATHIS_C, blended with the line,
    k = link.LOSS_BLEND) against the aggregate, with the per-flow C the measurement implies
    and the soft minimum's exponent k side by side."""
    losses = sorted({p for kind, p, _ in medians if kind == "loss"}, reverse=True)
    assert losses
    capacity = link_of["line"] * efficiency
    pairs = []
    for p in losses:
        one = medians[("loss", p, 1)]["aggregate"]
        per_flow_bound = link_of["mss"] / (link_of["rtt"] * math.sqrt(p))  # C = 1
        print(f"\nloss-bound, p = {p:g}:")
        for k in (1, 2, 4, 8):
            m = medians[("loss", p, k)]
            meas = m["aggregate"]
            pred = _loss_model(k, p, link_of, efficiency)
            hard = min(capacity, k * link.MATHIS_C * per_flow_bound)
            growth = meas / min(k * one, capacity)
            pairs.append((meas, pred))
            print(
                f"  K={k}: aggregate {meas * 8 / 1e6:7.2f} Mbit/s = {meas / one:.2f} × K=1 "
                f"({growth:.2f} of min(K × K=1, line)), C per flow {meas / k / per_flow_bound:.2f}"
                f", flows summed {m['sum'] * 8 / 1e6:7.2f}; model {pred * 8 / 1e6:7.2f} "
                f"({pred / meas - 1:+.1%}), hard minimum {hard * 8 / 1e6:7.2f} "
                f"({hard / meas - 1:+.1%})"
            )
            assert abs(growth - 1.0) < LOSS_GROWTH_TOLERANCE, k
        for blend in (1.0, 2.0, 4.0, 8.0, math.inf):
            errs = [
                _loss_model(k, p, link_of, efficiency, blend=blend if blend < math.inf else 1e3)
                / medians[("loss", p, k)]["aggregate"]
                - 1.0
                for k in (1, 2, 4, 8)
            ]
            print(
                f"  soft minimum k = {blend:g}: errors K=1,2,4,8 "
                + ", ".join(f"{e:+.1%}" for e in errs)
            )
    median, worst = _errors(pairs)
    print(f"  model error over {len(pairs)} configurations: median {median:.1%}, max {worst:.1%}")
    assert worst < LOSS_MODEL_TOLERANCE
    # Conservative: the model may say less than the flows carry, never more beyond the noise.
    assert all(pred <= meas * 1.1 for meas, pred in pairs)


# Bounds set from the measurements (module docstring), not from the model.
WINDOW_TOLERANCE = 0.02
LOSS_GROWTH_TOLERANCE = 0.25
LOSS_MODEL_TOLERANCE = 0.25
LINE_TOLERANCE = 0.05
