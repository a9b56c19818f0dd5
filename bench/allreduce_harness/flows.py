"""Measure whether parallel TCP flows on one emulated link add up; write the CSV the model's
flow scaling is checked against (tests/perfmodel/test_flows_measured.py).

    python bench/allreduce_harness/flows.py [--out FILE.csv] [--repeats N]

Two network namespaces joined by netem.py (session.py, as run.py's sessions): a receiver in the
first, a sender in the second opening K parallel TCP connections (plain sockets, TCP Reno in
both namespaces). Every connection first sends a warm-up (about a second of its expected rate,
2.5 s with loss: past slow start); once the receiver has read every warm-up it sends one byte
on each connection, and every connection then sends a fixed amount (about :data:`TIMED_S`
seconds of its expected rate, :data:`LOSS_SCALE` times that with loss) concurrently. The
receiver times each connection from its first timed byte
to its last: aggregate goodput = all timed bytes / (first byte of any flow to last byte of any),
per-connection goodput = its bytes / its own span, and their sum. The aggregate is what a
collective sees (a step ends when its last flow does: K × the slowest flow when the flows are
independent); the sum is what the flows carried each at its own pace, without the tail in which
the slower ones finish alone; it means something only below the line (where the line binds, a
flow that finishes early leaves it to the others, and the sum of rates over different spans
exceeds the line). (A rate over the interval in which every flow was still running
was tried and dropped: over a short interval it counts data the receiver had buffered.)

Configurations (all 20 ms one way, 160 Mbit/s, an 8 MiB drop-tail buffer as run.py's):

* **window-bound** — no loss, each connection's window capped by the receiver's ``SO_RCVBUF``
  (:data:`WINDOW_RCVBUF`, set on the listening socket before ``listen`` so that accepted
  connections inherit it and the window scale is chosen for it; setting it also turns off the
  receive-buffer autotuning). The receive window is what a window bound is in practice (the
  bandwidth-delay product a host is tuned for), and capping it at the receiver caps every flow
  whatever the sender's congestion window does. The kernel doubles the request and advertises
  a share of it that depends on its accounting, so the effective single-flow window is
  *measured* from K = 1 (goodput × RTT), not assumed; K = 1, 2, 4, 8, with 8 flows below the line.
  48 KiB: the window is then six 8,948-byte segments and every flow runs at one rate. With
  64 KiB (nine segments and a fraction) flows settled at either 14.1 or 17.1–17.6 Mbit/s, run
  to run and within one run (an odd window meets the receiver's delayed ACK), which would make
  K = 1 a coin toss; 80 KiB puts 8 flows above the line.
* **loss-bound** — 1 % random loss per packet (both directions), default windows, K = 1, 2,
  4, 8: Mathis' per-flow bound (17.5 Mbit/s) times K stays below the line up to K = 8. 0.2 %
  was tried and left out: a flow then sees about one loss a second, and a fixed amount of a
  few seconds ended before its slow-start window had decayed (single flows at 120–146 Mbit/s
  against Mathis' 39, 3–7 retransmits each); a steady state would need runs far longer than
  this budget.
* **line-bound** — no loss, default windows, K = 1 and 8: the line binds whatever K.

Each namespace also sets ``tcp_slow_start_after_idle=0`` (a flow that waits for the others'
warm-ups keeps its window) and ``tcp_no_metrics_save=1`` (a connection does not inherit the
ssthresh an earlier run cached for the same address). Repeats run interleaved (every
configuration once, then again), so a drift in the machine's load touches every K alike.

Needs root (network namespaces, TUN devices, real-time priority); without it, it says so and
exits 0 without measuring. About 4 minutes on two cores with the default three repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from session import (
    MTU,
    address,
    control,
    csv_with_columns,
    in_namespace,
    linked_namespaces,
    say,
)
from session import namespace_prerequisites as prerequisites

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = ROOT / "bench" / "data" / "flows_measurements.csv"
PORT = 5301
DELAY_S = 0.020
RATE_BPS = 160e6
BUFFER_BYTES = 8 << 20
MSS = MTU - 52
WINDOW_RCVBUF = 48 << 10
# Seconds of a configuration's expected rate each connection sends after its warm-up.
TIMED_S = 3.5
WARMUP_S = 1.0
LOSS = 0.01
# A lossy flow sends 2.5 times longer (about 9 s, some 2,000 segments and 20 losses per flow at
# 1 %): over 3.5 s a flow sees about 8 losses, and a lucky one still rode the window its slow
# start left it (one flow of 1 carried 7.7 MB in 0.55 s, 111 Mbit/s, against Mathis' 17.5).
LOSS_SCALE = 2.5
CHUNK = 1 << 20

COLUMNS = [
    ("kind", "", "window (capped receive buffer), loss (random loss) or line (neither)"),
    ("repeat", "", "repeat of the configuration (repeats run interleaved)"),
    ("flows", "", "parallel TCP connections from the sender to the receiver (K)"),
    ("congestion_control", "", "TCP congestion control in both namespaces"),
    ("delay_ms", "ms", "one-way propagation delay of the emulated link (each direction)"),
    ("rate_mbps", "Mbit/s", "line rate of the emulated link (each direction, shared by flows)"),
    ("loss", "", "independent per-packet loss probability (each direction)"),
    ("buffer_bytes", "B", "drop-tail buffer of the link"),
    ("mtu_bytes", "B", "MTU of the emulated link (TCP MSS = MTU - 52 with timestamps)"),
    ("rcvbuf_bytes", "B", "SO_RCVBUF requested by the receiver (0: default, autotuned)"),
    ("rcvbuf_actual_bytes", "B", "SO_RCVBUF the kernel reports on an accepted connection"),
    ("warmup_bytes", "B", "untimed bytes every connection sends first"),
    ("amount_bytes", "B", "timed bytes every connection sends after the warm-up"),
    ("seconds", "s", "first timed byte of any flow to the last of any, at the receiver"),
    ("aggregate_mbps", "Mbit/s", "all timed bytes / seconds (goodput, TCP payload)"),
    ("flow_mbps_sum", "Mbit/s", "sum of the connections' goodputs (each over its own span)"),
    ("flow_mbps_min", "Mbit/s", "slowest connection's goodput (its bytes / its own span)"),
    ("flow_mbps_median", "Mbit/s", "median connection's goodput"),
    ("flow_mbps_max", "Mbit/s", "fastest connection's goodput"),
    ("retransmits", "", "segments the sender retransmitted, all flows (TCP_INFO, with warm-up)"),
    ("emulator_loss_drops", "", "packets the emulator dropped at random (both directions)"),
    ("emulator_queue_drops", "", "packets the emulator dropped for a full buffer"),
    ("emulator_late_max_ms", "ms", "worst lateness of a packet against the emulated schedule"),
    ("queue_ms", "ms", "mean time a packet waited in the link's buffer"),
]


def expected_flow_bytes_per_s(flows: int, loss: float, window: float | None) -> float:
    """A rough per-flow rate, only to size the amounts (hard minimum of the three bounds)."""
    rtt = 2 * DELAY_S
    bound = RATE_BPS / 8 * 0.99
    if window:
        bound = min(bound, flows * window / rtt)
    if loss:
        bound = min(bound, flows * 0.98 * MSS / (rtt * math.sqrt(loss)))
    return bound / flows


def configurations() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    # The effective window is about the requested SO_RCVBUF for sizing (the kernel doubles it
    # and advertises about half); the measured K = 1 says what it is.
    for k in (1, 2, 4, 8):
        out.append({"kind": "window", "flows": k, "loss": 0.0, "rcvbuf": WINDOW_RCVBUF})
    for k in (1, 2, 4, 8):
        out.append({"kind": "loss", "flows": k, "loss": LOSS, "rcvbuf": 0})
    for k in (1, 8):
        out.append({"kind": "line", "flows": k, "loss": 0.0, "rcvbuf": 0})
    for c in out:
        rate = expected_flow_bytes_per_s(
            int(c["flows"]),
            float(c["loss"]),
            float(c["rcvbuf"]) or None,
        )
        scale = LOSS_SCALE if c["loss"] else 1.0
        c["warmup"] = int(max(256 << 10, scale * WARMUP_S * rate))
        c["amount"] = int(scale * TIMED_S * rate)
    return out


# --- the two endpoints (run inside the namespaces) ---


def serve(port: int, flows: int, warmup: int, rcvbuf: int) -> dict[str, Any]:
    """Accept ``flows`` connections, read their warm-ups, start them, time the rest."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    listener.bind(("0.0.0.0", port))
    listener.listen(flows)
    print("listening", file=sys.stderr, flush=True)
    conns = [listener.accept()[0] for _ in range(flows)]
    actual = conns[0].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    # The warm-ups run concurrently, as the timed transfers will: every flow reaches the state
    # it has among the others (a flow left unread would stall on a closed window instead).
    left = [warmup] * flows
    sel = selectors.DefaultSelector()
    for i, c in enumerate(conns):
        sel.register(c, selectors.EVENT_READ, i)
    while any(left):
        for key, _ in sel.select():
            i = key.data
            n = conns[i].recv_into(view[: min(left[i], CHUNK)])
            if not n:
                raise RuntimeError("a connection closed during its warm-up")
            left[i] -= n
            if not left[i]:
                sel.unregister(conns[i])
    for c in conns:
        c.sendall(b"g")
    first = [math.inf] * flows  # each flow's first and last timed byte, at the receiver
    last = [0.0] * flows
    totals = [0] * flows
    for i, c in enumerate(conns):
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, i)
    open_ = flows
    while open_:
        for key, _ in sel.select():
            i = key.data
            try:
                n = conns[i].recv_into(view)
            except BlockingIOError:
                continue
            now = time.monotonic()
            if not n:
                sel.unregister(key.fileobj)
                open_ -= 1
                continue
            totals[i] += n
            first[i] = min(first[i], now)
            last[i] = now
    for c in conns:
        c.close()
    return {
        "seconds": max(last) - min(first),
        "bytes": sum(totals),
        "flow_rates": [tot / (b - a) for tot, a, b in zip(totals, first, last, strict=True)],
        "rcvbuf_actual": actual,
    }


TCP_INFO_TOTAL_RETRANS = 100  # byte offset of tcpi_total_retrans in struct tcp_info


def send(host: str, port: int, flows: int, warmup: int, amount: int) -> dict[str, Any]:
    """Open ``flows`` connections; each sends its warm-up, waits for the start, then sends."""
    conns = []
    for _ in range(flows):
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.connect((host, port))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        conns.append(s)
    data = memoryview(bytes(CHUNK))
    retrans = [0] * flows

    def push(s: socket.socket, n: int) -> None:
        while n:
            m = min(n, CHUNK)
            s.sendall(data[:m])
            n -= m

    def run(i: int, s: socket.socket) -> None:
        push(s, warmup)
        if s.recv(1) != b"g":
            raise RuntimeError("no start from the receiver")
        push(s, amount)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # the receiver closes once it has read everything
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        retrans[i] = struct.unpack_from("I", info, TCP_INFO_TOTAL_RETRANS)[0]
        s.close()

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"retransmits": sum(retrans)}


# --- the orchestration (host namespace) ---


def measure(
    cfg: dict[str, Any], namespaces: list[str], control_path: Path, port: int
) -> dict[str, Any]:
    control(
        control_path,
        {
            "op": "set",
            "delay_s": DELAY_S,
            "rate_bps": RATE_BPS,
            "loss": cfg["loss"],
            "buffer_bytes": BUFFER_BYTES,
        },
    )
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--port", str(port), "--flows", str(cfg["flows"]), "--warmup", str(cfg["warmup"])]
    receiver = subprocess.Popen(
        [*in_namespace(namespaces[0]), *me, "serve", *common, "--rcvbuf", str(cfg["rcvbuf"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert receiver.stderr is not None
    receiver.stderr.readline()  # "listening"
    sender = subprocess.Popen(
        [
            *in_namespace(namespaces[1]),
            *me,
            "send",
            *common,
            *("--host", address(0), "--amount", str(cfg["amount"])),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        got_r, _ = receiver.communicate(timeout=120)
        got_s, _ = sender.communicate(timeout=30)
    finally:
        for p in (receiver, sender):
            if p.poll() is None:
                p.kill()
                p.wait()
    if receiver.returncode or sender.returncode:
        raise RuntimeError(f"an endpoint failed ({receiver.returncode}, {sender.returncode})")
    stats = control(control_path, {"op": "stats"})
    return {**cfg, **json.loads(got_r), **json.loads(got_s), "emulator": stats}


def row(r: dict[str, Any]) -> list[object]:
    rates = sorted(float(x) * 8 / 1e6 for x in r["flow_rates"])
    emu: dict[str, float] = r["emulator"]
    seconds = float(r["seconds"])
    return [
        r["kind"],
        r["repeat"],
        r["flows"],
        "reno",
        f"{DELAY_S * 1e3:g}",
        f"{RATE_BPS / 1e6:g}",
        f"{float(r['loss']):g}",
        BUFFER_BYTES,
        MTU,
        r["rcvbuf"],
        r["rcvbuf_actual"],
        r["warmup"],
        r["amount"],
        f"{seconds:.4f}",
        f"{float(r['bytes']) * 8 / 1e6 / seconds:.3f}",
        f"{sum(rates):.3f}",
        f"{rates[0]:.3f}",
        f"{statistics.median(rates):.3f}",
        f"{rates[-1]:.3f}",
        r["retransmits"],
        emu["loss_drops"],
        emu["queue_drops"],
        f"{emu['max_late_s'] * 1e3:.3f}",
        f"{emu['mean_queue_s'] * 1e3:.3f}",
    ]


def write_csv(rows: list[dict[str, Any]], out: Path, seconds: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        f.write("# Parallel TCP flows (plain sockets, Reno) on one emulated link: do they add?\n")
        f.write("# written by bench/allreduce_harness/flows.py (one row per run, not medians)\n")
        f.write(f"# measured {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, ")
        f.write(f"Linux {os.uname().release}, {os.cpu_count()} CPUs; ran in {seconds:.0f} s\n")
        writer = csv_with_columns(f, COLUMNS)
        for r in rows:
            writer.writerow(row(r))


SYSCTLS = (
    "net.ipv4.tcp_congestion_control=reno",
    "net.ipv4.tcp_slow_start_after_idle=0",
    "net.ipv4.tcp_no_metrics_save=1",
)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("serve", "send"):
        ep = argparse.ArgumentParser()
        ep.add_argument("role")
        ep.add_argument("--port", type=int, required=True)
        ep.add_argument("--flows", type=int, required=True)
        ep.add_argument("--warmup", type=int, required=True)
        ep.add_argument("--rcvbuf", type=int, default=0)
        ep.add_argument("--host")
        ep.add_argument("--amount", type=int)
        a = ep.parse_args(argv)
        if a.role == "serve":
            result = serve(a.port, a.flows, a.warmup, a.rcvbuf)
        else:
            result = send(a.host, a.port, a.flows, a.warmup, a.amount)
        print(json.dumps(result), flush=True)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    why = prerequisites()
    if why:
        say(f"flows harness: NOT MEASURED — {why}.")
        say("tests/perfmodel/test_flows_measured.py still checks the committed measurements.")
        return 0
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    port = PORT
    with (
        tempfile.TemporaryDirectory(prefix="flows-") as tmp,
        linked_namespaces(2, Path(tmp), SYSCTLS, tag=f"llf{os.getpid()}") as (nss, ctl),
    ):
        for repeat in range(args.repeats):
            for cfg in configurations():
                port += 1  # a fresh port: no TIME_WAIT of the previous run in the way
                r = measure({**cfg, "repeat": repeat}, nss, ctl, port)
                rows.append(r)
                say(
                    f"  {r['kind']:6} p={float(r['loss']):<5g} K={r['flows']} rep {repeat}: "
                    f"{row(r)[14]} Mbit/s aggregate, {row(r)[15]} summed over flows, "
                    f"{r['retransmits']} retransmits ({time.monotonic() - started:.0f} s)"
                )
    write_csv(rows, args.out, time.monotonic() - started)
    say(f"{len(rows)} runs in {time.monotonic() - started:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
