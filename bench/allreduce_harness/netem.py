"""A user-space packet link emulator between network namespaces (the kernel here has no netem).

One TUN device per rank namespace (``tun0`` inside each, address 10.77.0.<rank+1>/24); this
process holds every TUN file descriptor and forwards each IP packet from its source namespace to
the namespace owning the destination address, through a per-direction link with

* a line rate: packets are serialized one after another (``free_at += bytes·8 / rate``),
* a drop-tail buffer (``buffer_bytes`` of backlog; a packet that would exceed it is dropped),
* a one-way propagation delay added after serialization,
* an independent random loss probability.

Working on whole IP packets keeps TCP end to end (slow start, window, retransmission are the
kernel's own), which a TCP relay would hide. Configured and queried over a Unix socket (Unix
sockets on the file system cross network namespaces): one JSON object per line,
``{"op": "set", "delay_s": ..., "rate_bps": ..., "loss": ..., "buffer_bytes": ...}`` →
``{"ok": true}``; ``{"op": "stats"}`` → counters (packets, drops, worst lateness of a delivery
against its schedule, which says how far the emulator's own timing can be trusted, and the mean
and worst time a packet waited in the buffer behind earlier ones).

Run as root: ``python netem.py --namespaces r0 r1 --control /path/sock --ready /path/file``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import socket
import struct
import threading
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
SUBNET = "10.77.0."


def open_tun_in(namespace: str, name: str = "tun0") -> int:
    """Create ``name`` inside ``namespace`` and return its file descriptor (held here)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    finally:
        if libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back home")
        os.close(home)
        os.close(target)
    os.set_blocking(fd, False)
    return fd


class Link:
    __slots__ = ("free_at",)

    def __init__(self) -> None:
        self.free_at = 0.0


class Emulator:
    def __init__(self, fds: list[int], seed: int = 1) -> None:
        self.fds = fds
        self.n = len(fds)
        self.links = [[Link() for _ in fds] for _ in fds]
        self.delay_s = 0.0
        self.rate_bps = 1e12
        self.loss = 0.0
        self.buffer_bytes = float(1 << 30)
        self.rng = random.Random(seed)
        self.heap: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.lock = threading.Lock()
        self.stats = {"packets": 0, "bytes": 0, "loss_drops": 0, "queue_drops": 0}
        self.max_late_s = 0.0
        self.sum_late_s = 0.0
        self.delivered = 0
        self.sum_queue_s = 0.0
        self.max_queue_s = 0.0

    def configure(self, delay_s: float, rate_bps: float, loss: float, buffer_bytes: float) -> None:
        with self.lock:
            self.delay_s = delay_s
            self.rate_bps = rate_bps
            self.loss = loss
            self.buffer_bytes = buffer_bytes
            self.stats = dict.fromkeys(self.stats, 0)
            self.max_late_s = 0.0
            self.sum_late_s = 0.0
            self.delivered = 0
            self.sum_queue_s = 0.0
            self.max_queue_s = 0.0

    def _enqueue(self, src: int, packet: bytes, now: float) -> None:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return  # only IPv4 is routed (no IPv6 addresses are configured)
        dst_addr = packet[16:20]
        if dst_addr[:3] != bytes((10, 77, 0)):
            return
        dst = dst_addr[3] - 1
        if not 0 <= dst < self.n or dst == src:
            return
        self.stats["packets"] += 1
        self.stats["bytes"] += len(packet)
        if self.loss and self.rng.random() < self.loss:
            self.stats["loss_drops"] += 1
            return
        link = self.links[src][dst]
        start = max(now, link.free_at)
        if (start - now) * self.rate_bps / 8.0 > self.buffer_bytes:
            self.stats["queue_drops"] += 1
            return
        # Time the packet (data, ACK or ready notice) waits in the buffer behind the packets
        # queued before it: the queue a crossing of this link meets.
        self.sum_queue_s += start - now
        self.max_queue_s = max(self.max_queue_s, start - now)
        link.free_at = start + len(packet) * 8.0 / self.rate_bps
        self.seq += 1
        heapq.heappush(self.heap, (link.free_at + self.delay_s, self.seq, dst, packet))

    def run(self) -> None:
        fds = self.fds
        index = {fd: i for i, fd in enumerate(fds)}
        heap = self.heap
        while True:
            now = time.monotonic()
            timeout = None if not heap else max(0.0, heap[0][0] - now)
            readable, _, _ = select.select(fds, [], [], timeout)
            now = time.monotonic()
            with self.lock:
                for fd in readable:
                    src = index[fd]
                    for _ in range(64):
                        try:
                            packet = os.read(fd, 65536)
                        except BlockingIOError:
                            break
                        self._enqueue(src, packet, now)
                now = time.monotonic()
                while heap and heap[0][0] <= now:
                    due, _, dst, packet = heapq.heappop(heap)
                    late = now - due
                    if late > self.max_late_s:
                        self.max_late_s = late
                    self.sum_late_s += late
                    self.delivered += 1
                    # A full device queue loses the packet, as on a wire.
                    with contextlib.suppress(OSError):
                        os.write(fds[dst], packet)

    def serve_control(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(4)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw") as f:
            for line in f:
                msg = json.loads(line)
                if msg["op"] == "set":
                    self.configure(
                        float(msg["delay_s"]),
                        float(msg["rate_bps"]),
                        float(msg.get("loss", 0.0)),
                        float(msg.get("buffer_bytes", 1 << 30)),
                    )
                    reply: dict[str, object] = {"ok": True}
                elif msg["op"] == "stats":
                    with self.lock:
                        reply = {
                            **self.stats,
                            "max_late_s": self.max_late_s,
                            "mean_late_s": self.sum_late_s / max(self.delivered, 1),
                            "mean_queue_s": self.sum_queue_s / max(self.delivered, 1),
                            "max_queue_s": self.max_queue_s,
                        }
                else:
                    reply = {"ok": False, "error": "unknown op"}
                f.write(json.dumps(reply) + "\n")
                f.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespaces", nargs="+", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    fds = [open_tun_in(ns) for ns in args.namespaces]
    # The emulator's lateness is the measurement's error: give it the CPU first when the
    # machine is shared (lowest real-time priority; it sleeps in select between packets).
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    emu = Emulator(fds)
    threading.Thread(target=emu.serve_control, args=(args.control,), daemon=True).start()
    while not os.path.exists(args.control):
        time.sleep(0.01)
    with open(args.ready, "w") as f:
        f.write("ready\n")
    emu.run()


if __name__ == "__main__":
    main()
