"""Tenant API benchmark: gunicorn on PostgreSQL under wrk, each list beside its bare-view floor.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_api.py [--seconds N]

Creates a throwaway database `landlord_bench_api`, seeds one tenant with 500 leases (two lines
each) and 500 issued invoices, starts gunicorn (sync workers, DEBUG off, persistent database
connections) on a free loopback port, and drives 16 concurrent connections with wrk (closed
loop, keep-alive) for N seconds (default 30, in 6 interleaved slices) at each of:

* `GET /api/v1/leases/` and `GET /api/v1/invoices/` (page of 50, through DRF: authenticated
  by API key, throttled per key, filters, cursor pagination, rendering), and
* the floor: bare Django views returning the same JSON from the same queries and row
  functions (`bench/urls_api.py`), and
* a no-op Django view (no database): the ceiling of any view on this server and machine.

The target, at 16 clients, for each list against its floor on the same query in the same run:
throughput ≥ 0.5 × the floor's and p99 ≤ 1.3 × the floor's. (An absolute "p99 under 50 ms" was
dropped: at 16 clients a closed loop has a mean latency of 16 / throughput, and the no-op view
alone does not reach the 320 req/s that 50 ms needs on two shared cores.)

Each wrk run reports its whole latency histogram (a Lua `done` hook), so the percentiles are
those of every request of an endpoint across its slices, not a mean of per-slice percentiles.
The slices are interleaved so a change in background load hits a list and its floor alike; the
per-round p99 ratios are printed too, to show how much the load moved them. The load average
at the start and the end is printed: the load generator and other work share the cores with
the server, so only the ratios of one run are comparable, not the absolute figures.

wrk is installed by `make bench` (apt, when root); it is a C event loop whose cost at these
rates is small beside the server's, which a Python client on the same cores would not be.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import report, throwaway_database, verdict  # noqa: E402

BENCH_DB = "landlord_bench_api"
LEASES = 500
CONNECTIONS = 16
THREADS = 2
ROUNDS = 6
TARGET_THROUGHPUT_RATIO = 0.5  # list / floor, at least
TARGET_P99_RATIO = 1.3  # list / floor, at most
RESOURCES = ("lease", "invoice")

# wrk calls `done` once at the end of a run: print the totals and every (latency µs, count)
# bucket of the histogram, which the bench adds up across slices.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TOTAL %d %d %d\\n", summary.duration, summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout))
  for i = 1, #latency do
    local value, count = latency(i)
    io.write(string.format("LATENCY %d %d\\n", value, count))
  end
end
"""


def seed() -> str:
    """One tenant, 500 leases with two lines each, 500 issued invoices; returns an API key."""
    from billing.choices import InvoiceStatus
    from billing.models import Invoice
    from clusters.models import AcceleratorModel, Cluster, Site
    from common.contract_time import local_midnight
    from leasing.api_keys import api_key_create
    from leasing.choices import LeaseStatus
    from leasing.models import Lease, LeaseLine, Tenant

    site = Site.objects.create(
        name="Bench", slug="bench-site", latitude=41.9, longitude=-87.6, power_mw=500
    )
    cluster = Cluster.objects.create(
        site=site,
        name="bench",
        slug="bench",
        accelerator=AcceleratorModel.objects.get(slug="h100"),
        gpus_per_node=8,
        fabric_gbps_per_gpu=400,
    )
    tenant = Tenant.objects.create(name="Bench Lab", slug="bench-lab")
    start = dt.date(2026, 1, 1)
    leases = Lease.objects.bulk_create(
        Lease(
            number=f"L-B-{i:05d}",
            tenant=tenant,
            status=LeaseStatus.ACTIVE,
            commencement_date=start,
            commencement=local_midnight(start, "UTC"),
            term_end=local_midnight(start + dt.timedelta(days=180), "UTC"),
        )
        for i in range(LEASES)
    )
    LeaseLine.objects.bulk_create(
        LeaseLine(lease=lease, cluster=cluster, node_count=10, monthly_rate=Decimal("1.00"))
        for lease in leases
        for _ in range(2)
    )
    issued = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    Invoice.objects.bulk_create(
        Invoice(
            number=f"INV-B-{i:06d}",
            tenant=tenant,
            lease=lease,
            period=start,
            period_start=issued,
            period_end=issued + dt.timedelta(days=31),
            status=InvoiceStatus.ISSUED,
            total=Decimal("2.00"),
            issued_at=issued,
            due_at=issued + dt.timedelta(days=30),
        )
        for i, lease in enumerate(leases)
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as autovacuum would have them
    return api_key_create(tenant=tenant, name="bench")[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings_api", "DEBUG": "false"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "/dev/null",
                "config.wsgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/floor/leases/")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-4000:]}")


@dataclass
class Sample:
    """What wrk measured at one endpoint: one slice, or the sum of several."""

    duration_s: float = 0.0
    requests: int = 0
    failed: int = 0  # socket errors, timeouts and responses with a status ≥ 400
    latency_us: Counter = field(default_factory=Counter)

    def __add__(self, other: Sample) -> Sample:
        return Sample(
            self.duration_s + other.duration_s,
            self.requests + other.requests,
            self.failed + other.failed,
            self.latency_us + other.latency_us,
        )

    @property
    def throughput(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the recorded latencies, in milliseconds."""
        total = sum(self.latency_us.values())
        if not total:
            return float("nan")
        rank = max(1, -(-p * total // 100))  # ceil(p% of total)
        seen = 0
        for value, count in sorted(self.latency_us.items()):
            seen += count
            if seen >= rank:
                return value / 1000
        return max(self.latency_us) / 1000


def wrk(url: str, seconds: int, key: str | None, script: Path) -> Sample:
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s"]
    cmd += ["-s", str(script)]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL
    ).stdout
    sample = Sample()
    for line in out.splitlines():
        tag, *values = line.split()
        if tag == "TOTAL":
            sample.duration_s = int(values[0]) / 1e6
            sample.requests, sample.failed = int(values[1]), int(values[2])
        elif tag == "LATENCY":
            sample.latency_us[int(values[0])] += int(values[1])
    return sample


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30, help="per endpoint, all slices")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make loadgen` installs it (as root, apt), or apt-get install wrk")
    workers = max(2, 2 * (os.cpu_count() or 1))
    load_before = os.getloadavg()
    with throwaway_database(BENCH_DB), tempfile.TemporaryDirectory() as tmp:
        key = seed()
        from django.db import connections

        connections.close_all()
        script = Path(tmp) / "report.lua"
        script.write_text(WRK_REPORT)
        port = free_port()
        log = Path(tmp) / "gunicorn.log"
        server = start_gunicorn(port, workers, log)
        try:
            base = f"http://127.0.0.1:{port}"
            runs = {
                "lease list": ("/api/v1/leases/", key),
                "lease floor": ("/floor/leases/", None),
                "invoice list": ("/api/v1/invoices/", key),
                "invoice floor": ("/floor/invoices/", None),
                "no-op view": ("/floor/noop/", None),
            }
            for path, auth in runs.values():
                wrk(base + path, 1, auth, script)  # warm-up: connections, caches
            # Interleaved slices, so a change in background load hits both sides alike.
            slices: dict[str, list[Sample]] = {name: [] for name in runs}
            per_slice = max(1, args.seconds // ROUNDS)
            for _ in range(ROUNDS):
                for name, (path, auth) in runs.items():
                    slices[name].append(wrk(base + path, per_slice, auth, script))
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    load_after = os.getloadavg()
    total = {name: sum(parts, Sample()) for name, parts in slices.items()}
    print(
        f"\ngunicorn {workers} sync workers, wrk {THREADS} threads × {CONNECTIONS} connections, "
        f"{ROUNDS} interleaved rounds of {per_slice} s per endpoint, page of 50, "
        f"{LEASES} leases and invoices, {os.cpu_count()} cores; load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )

    def figures(sample: Sample) -> str:
        return (
            f"{sample.throughput:,.0f} req/s  p50 {sample.percentile_ms(50):.1f} ms  "
            f"p99 {sample.percentile_ms(99):.1f} ms  ({sample.requests:,} requests)"
        )

    rows = []
    for resource in RESOURCES:
        api, floor = total[f"{resource} list"], total[f"{resource} floor"]
        throughput = ratio(api.throughput, floor.throughput)
        p99 = ratio(api.percentile_ms(99), floor.percentile_ms(99))
        rounds = [
            ratio(a.percentile_ms(99), f.percentile_ms(99))
            for a, f in zip(slices[f"{resource} list"], slices[f"{resource} floor"], strict=True)
        ]
        failed = api.failed + floor.failed
        rows += [
            (f"{resource} list", figures(api), "", ""),
            (f"{resource} floor", figures(floor), "", ""),
            (
                f"{resource} throughput list / floor",
                f"{throughput:.2f}",
                f"≥ {TARGET_THROUGHPUT_RATIO}",
                verdict(throughput >= TARGET_THROUGHPUT_RATIO),
            ),
            (
                f"{resource} p99 list / floor",
                f"{p99:.2f}",
                f"≤ {TARGET_P99_RATIO}",
                f"{verdict(p99 <= TARGET_P99_RATIO)}  "
                f"(per round {min(rounds):.2f}–{max(rounds):.2f})",
            ),
            (f"{resource} failed requests", str(failed), "0", verdict(failed == 0)),
        ]
    noop = total["no-op view"]
    rows += [
        ("no-op view", figures(noop), "", "the ceiling of any view"),
        ("no-op failed requests", str(noop.failed), "0", verdict(noop.failed == 0)),
    ]
    for resource in RESOURCES:
        rps = total[f"{resource} list"].throughput
        cost = f"{noop.throughput / rps:.1f} no-op requests" if rps else "n/a"
        rows.append((f"{resource} list cost", cost, "", ""))
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
