"""Measure a real synchronous all-reduce over emulated long links; write the CSV the model is
checked against (tests/perfmodel/test_validation.py).

    python bench/allreduce_harness/run.py [--grid full|quick|lossy] [--out FILE.csv]

``full`` (the default) is the grid of bench/data/allreduce_measurements.csv (about 12 minutes on
two cores); ``quick`` (``make validate``, about 4 minutes) keeps two delays, two sizes and the
5 ms lossy points; ``lossy`` measures only the lossy Reno points, for repeats
(bench/data/allreduce_lossy_repeats.csv).

Needs root (network namespaces, TUN devices, real-time priority for the emulator and the ranks)
and torch (``pip install '.[validate]'``). Without either it says so and exits 0 without
measuring, so ``make validate`` still checks the model against the committed measurements.

For each rank count (2–4) a session creates one network namespace per rank, starts netem.py (the
user-space link emulator holding every rank's TUN device) and the ranks (worker.py), and walks
the grid: one-way delay × line rate × message size × compute (none, or 20 ms with the last rank
3× slower), plus loss points, with TCP Reno; then a few points with BBR. Every pair of ranks has
its own emulated link in each direction. The congestion control is set per namespace because the
host's default (often cubic or BBR) changes what a link delivers to bursty collective traffic.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from session import (
    MTU,
    csv_with_columns,
    in_namespace,
    linked_namespaces,
    namespace_prerequisites,
    say,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = ROOT / "bench" / "data" / "allreduce_measurements.csv"
# Deep drop-tail buffers (larger than any message of the grid): queue overflow never drops a
# packet, so the only losses are the ones set by ``loss`` and the loss law can be read cleanly.
BUFFER_BYTES = 8 << 20
# Timed steps of a lossy configuration (a lossless one takes 3-12, by its length).
LOSSY_ITERS = 24

COLUMNS = [
    ("ranks", "", "number of ranks (processes), one network namespace each"),
    ("congestion_control", "", "TCP congestion control of every rank (reno or bbr)"),
    ("delay_ms", "ms", "one-way propagation delay of every emulated link"),
    ("rate_mbps", "Mbit/s", "line rate of every emulated link (each direction)"),
    ("loss", "", "independent per-packet loss probability on every link"),
    ("buffer_bytes", "B", "drop-tail buffer of every link"),
    ("mtu_bytes", "B", "MTU of the emulated links (TCP MSS = MTU - 52 with timestamps)"),
    ("size_bytes", "B", "all-reduced message per rank (float32 tensor)"),
    ("compute_ms", "ms", "compute (sleep) per step of every rank but the last"),
    ("slow_factor", "", "the last rank's compute is compute_ms x slow_factor"),
    ("iters", "", "timed steps (after warmup steps)"),
    ("step_ms_median", "ms", "median step period: compute + all-reduce, as a training loop sees"),
    ("step_ms_min", "ms", "fastest timed step"),
    ("step_ms_max", "ms", "slowest timed step"),
    ("comm_ms_median", "ms", "median all-reduce duration on the slowest rank"),
    ("emulator_late_ms", "ms", "mean lateness of a packet against the emulated schedule"),
    ("emulator_late_max_ms", "ms", "worst lateness of a packet against the emulated schedule"),
    ("emulator_drops", "", "packets dropped (loss + full buffer) during the configuration"),
    ("queue_ms", "ms", "mean time a packet waited in a link's buffer behind earlier packets"),
    ("queue_max_ms", "ms", "longest time a packet waited in a link's buffer"),
    ("step_spread", "", "interquartile range of the step times over their median"),
    ("attempts", "", "measurements of this configuration (repeated while unsteady, worker.py)"),
]


def prerequisites() -> str | None:
    """None when measuring is possible, else why not."""
    why = namespace_prerequisites()
    if why:
        return why
    try:
        import torch.distributed as dist
    except ImportError:
        return "torch is not installed (pip install '.[validate]')"
    if not dist.is_gloo_available():
        return "torch has no gloo backend"
    return None


GRIDS = ("full", "quick", "lossy")


def grid(ranks: int, kind: str, congestion_control: str) -> list[dict[str, object]]:
    """The configurations of one session (one rank count, one TCP congestion control).

    Reno (loss-based, the law the loss bound is derived for) runs the grid ``kind`` (module
    docstring); BBR, in the full grid only, a few points that show how a rate-based sender
    differs on bursty collective traffic.
    """
    quick = kind == "quick"
    if congestion_control == "bbr":
        points = [(d, 160.0, 0.0, s, 0.0, 1.0) for d in (5.0, 20.0) for s in (512 << 10, 4 << 20)]
        points.append((20.0, 160.0, 0.01, 4 << 20, 0.0, 1.0))
    else:
        delays_ms = [1.0, 20.0] if quick else [1.0, 5.0, 20.0]
        rates = [40.0, 160.0]
        sizes = [16 << 10, 4 << 20] if quick else [16 << 10, 512 << 10, 4 << 20]
        compute = [(0.0, 1.0), (20.0, 3.0)]
        points = [
            (d, r, 0.0, s, c, f)
            for d, r, s, (c, f) in itertools.product(delays_ms, rates, sizes, compute)
            if kind != "lossy"
        ]
        # The lossy points at 20 ms take 1-3 s a step, 24 steps each: the quick grid keeps 5 ms.
        lossy_delays = (5.0,) if quick else (5.0, 20.0)
        points += [(d, 160.0, p, 4 << 20, 0.0, 1.0) for d in lossy_delays for p in (0.002, 0.01)]
    out = []
    for delay_ms, rate_mbps, loss, size, compute_ms, slow in points:
        rate_bps = rate_mbps * 1e6
        est = (
            compute_ms * slow / 1e3
            + 2 * (ranks - 1) / ranks * size * 8 / rate_bps
            + 2 * (ranks - 1) * 3 * delay_ms / 1e3
        )
        out.append(
            {
                "link": {
                    "delay_s": delay_ms / 1e3,
                    "rate_bps": rate_bps,
                    "loss": loss,
                    "buffer_bytes": BUFFER_BYTES,
                },
                "size_bytes": size,
                "compute_s": compute_ms / 1e3,
                "slow_factor": slow,
                "warmup": 2 if est < 0.3 else 1,
                # Lossy links vary from step to step (a loss costs a fast retransmit or a
                # timeout; step times spread by 10-55 % interquartile): 24 steps keep the
                # median's own sampling error to about 5 %.
                "iters": LOSSY_ITERS if loss else max(3, min(12, math.ceil(1.5 / est))),
                "congestion_control": congestion_control,
            }
        )
    return out


def run_session(
    ranks: int,
    configs: list[dict[str, object]],
    work: Path,
    raw: Path,
    sysctls: tuple[str, ...] = (),
) -> None:
    cfg_file = work / f"configs{ranks}.jsonl"
    cfg_file.write_text("".join(json.dumps(c) + "\n" for c in configs))
    workers: list[subprocess.Popen[bytes]] = []
    with linked_namespaces(ranks, work, sysctls) as (namespaces, control):
        env = {**os.environ, "GLOO_SOCKET_IFNAME": "tun0", "OMP_NUM_THREADS": "1"}
        try:
            for i, ns in enumerate(namespaces):
                workers.append(
                    subprocess.Popen(
                        [
                            # Ahead of the machine's other work: a rank's wake-up delay is step
                            # time (session.in_namespace).
                            *in_namespace(ns),
                            *(sys.executable, str(HERE / "worker.py")),
                            *("--rank", str(i), "--world", str(ranks)),
                            *("--configs", str(cfg_file)),
                            *("--control", str(control), "--out", str(raw)),
                        ],
                        env=env,
                    )
                )
            for w in workers:
                if w.wait() != 0:
                    raise RuntimeError(f"a rank exited with status {w.returncode}")
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()


def write_csv(raw: Path, out: Path, kind: str, seconds: float) -> int:
    rows = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        f.write("# Synchronous all-reduce (torch.distributed gloo, CPU) over emulated links;\n")
        f.write("# written by bench/allreduce_harness/run.py")
        f.write("\n" if kind == "full" else f" --grid {kind}\n")
        f.write(f"# measured {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, ")
        f.write(f"torch {_torch_version()}, Linux {os.uname().release}; ran in {seconds:.0f} s\n")
        writer = csv_with_columns(f, COLUMNS)
        for r in rows:
            link = r["link"]
            steps = r["step_s"]
            comm = sorted(r["comm_s"])
            emu = r["emulator"]
            writer.writerow(
                [
                    r["ranks"],
                    r["congestion_control"],
                    f"{link['delay_s'] * 1e3:g}",
                    f"{link['rate_bps'] / 1e6:g}",
                    f"{link['loss']:g}",
                    int(link["buffer_bytes"]),
                    MTU,
                    r["size_bytes"],
                    f"{r['compute_s'] * 1e3:g}",
                    f"{r['slow_factor']:g}",
                    r["iters"],
                    f"{r['step_s_median'] * 1e3:.3f}",
                    f"{min(steps) * 1e3:.3f}",
                    f"{max(steps) * 1e3:.3f}",
                    f"{comm[len(comm) // 2] * 1e3:.3f}",
                    f"{emu['mean_late_s'] * 1e3:.3f}",
                    f"{emu['max_late_s'] * 1e3:.3f}",
                    emu["loss_drops"] + emu["queue_drops"],
                    f"{emu['mean_queue_s'] * 1e3:.3f}",
                    f"{emu['max_queue_s'] * 1e3:.3f}",
                    f"{_spread(steps):.4f}",
                    r["attempts"],
                ]
            )
    return len(rows)


def _spread(steps: list[float]) -> float:
    q = statistics.quantiles(steps, n=4) if len(steps) >= 2 else [steps[0]] * 3
    return (q[2] - q[0]) / statistics.median(steps)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--grid", choices=GRIDS, default="full", help="which grid (module docstring)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--congestion-control", nargs="+", default=["reno", "bbr"])
    args = ap.parse_args(argv)
    why = prerequisites()
    if why:
        say(f"all-reduce harness: NOT MEASURED — {why}.")
        say("The model is still checked against the committed measurements.")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="allreduce-") as tmp:
        work = Path(tmp)
        raw = work / "raw.jsonl"
        allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read_text().split()
        for cc in args.congestion_control:
            if cc != "reno" and cc not in allowed:
                say(f"{cc}: not allowed in a network namespace here (allowed: {allowed}); skipped")
                continue
            if cc != "reno" and args.grid != "full":
                continue
            for ranks in args.ranks:
                configs = [{**c, "ranks": ranks} for c in grid(ranks, args.grid, cc)]
                say(f"{ranks} ranks, {cc}: {len(configs)} configurations")
                run_session(ranks, configs, work, raw, (f"net.ipv4.tcp_congestion_control={cc}",))
        n = write_csv(raw, args.out, args.grid, time.monotonic() - started)
    say(f"{n} measurements in {time.monotonic() - started:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
