"""Network namespaces joined by the link emulator: what run.py and flows.py share.

:func:`linked_namespaces` creates one network namespace per endpoint, starts netem.py holding
every namespace's TUN device, gives namespace i the address 10.77.0.<i+1>/24 on ``tun0`` (MTU
:data:`MTU`) and applies the sysctls given (per namespace: TCP congestion control, buffers); on
exit it stops the emulator and deletes the namespaces. :func:`in_namespace` is the command
prefix that runs a process in one of them at the lowest real-time priority; :func:`control`
talks to the emulator (``{"op": "set", ...}``, ``{"op": "stats"}``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
MTU = 9000


def say(message: str) -> None:
    print(message, flush=True)


def csv_with_columns(f: TextIO, columns: Sequence[tuple[str, str, str]]) -> Any:
    """Write one commented line per column (name [unit]: meaning) and the header row; return
    the csv writer for the rows."""
    for name, unit, text in columns:
        f.write(f"# {name}{f' [{unit}]' if unit else ''}: {text}\n")
    writer = csv.writer(f)
    writer.writerow([c[0] for c in columns])
    return writer


def namespace_prerequisites() -> str | None:
    """None when namespaces joined by TUN devices can be made here, else why not."""
    if sys.platform != "linux":
        return "not Linux: network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "not root: creating network namespaces and TUN devices needs CAP_NET_ADMIN"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no TUN support)"
    probe = f"llv{os.getpid()}p"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


def address(i: int) -> str:
    """The address of namespace ``i`` on its ``tun0``."""
    return f"10.77.0.{i + 1}"


def in_namespace(ns: str) -> list[str]:
    """Command prefix: run in ``ns``, ahead of the machine's other work (lowest real-time
    priority; the processes sleep in their sockets and timers, so a wake-up is not delayed)."""
    return ["chrt", "--fifo", "1", "ip", "netns", "exec", ns]


def control(path: str | Path, message: dict[str, object]) -> dict[str, object]:
    """Send one request to the emulator's control socket; return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        with s.makefile("rw") as f:
            f.write(json.dumps(message) + "\n")
            f.flush()
            reply: dict[str, object] = json.loads(f.readline())
            return reply


@contextlib.contextmanager
def linked_namespaces(
    count: int, work: Path, sysctls: tuple[str, ...] = (), tag: str = ""
) -> Iterator[tuple[list[str], Path]]:
    """``count`` namespaces joined by the emulator; yields (their names, the control socket)."""
    tag = tag or f"llv{os.getpid()}"
    namespaces = [f"{tag}r{i}" for i in range(count)]
    control_path = work / f"netem{count}.sock"
    ready = work / f"netem{count}.ready"
    ready.unlink(missing_ok=True)
    emulator = None
    try:
        for ns in namespaces:
            subprocess.run(["ip", "netns", "add", ns], check=True)
        emulator = subprocess.Popen(
            [
                *(sys.executable, str(HERE / "netem.py"), "--control", str(control_path)),
                *("--ready", str(ready), "--namespaces", *namespaces),
            ]
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if emulator.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the link emulator did not start")
            time.sleep(0.05)
        for i, ns in enumerate(namespaces):
            for cmd in (
                ["ip", "link", "set", "lo", "up"],
                ["ip", "link", "set", "tun0", "mtu", str(MTU), "up"],
                ["ip", "addr", "add", f"{address(i)}/24", "dev", "tun0"],
                *(["sysctl", "-q", "-w", setting] for setting in sysctls),
            ):
                subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield namespaces, control_path
    finally:
        if emulator is not None:
            emulator.kill()
            emulator.wait()
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
