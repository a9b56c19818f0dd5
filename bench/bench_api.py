"""Tenant API benchmark: gunicorn on PostgreSQL under wrk, beside a bare Django floor.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_api.py [--seconds N]

Creates a throwaway database `landlord_bench_api`, seeds one tenant with 500 leases (two lines
each) and 500 issued invoices, starts gunicorn (sync workers, DEBUG off, persistent database
connections) on a free loopback port, and drives 16 concurrent connections with wrk for N
seconds (default 10, in 5 slices interleaved with the floor's) at each of:

* `GET /api/v1/leases/` and `GET /api/v1/invoices/` (page of 50, through DRF: authenticated
  by API key, throttled per key, filters, cursor pagination, rendering), and
* the floor: bare Django views returning the same JSON from the same queries and row
  functions (`bench/urls_api.py`), and
* a no-op Django view (no database): the ceiling of any view on this server and machine.

Prints throughput, p50 and p99 per run, the ratio to the floor, and PASS/MISS against the
targets (≥ half the floor's throughput; p99 < 50 ms), plus the throughput that a 50 ms mean
latency needs at 16 clients (Little's law) beside what the floor and the no-op view reach. The
load generator shares the machine's cores with the server, so compare with the floor of the same
run, not with absolute numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import report, throwaway_database, verdict  # noqa: E402

BENCH_DB = "landlord_bench_api"
LEASES = 500
CONNECTIONS = 16
THREADS = 2
TARGET_RATIO = 0.5
ROUNDS = 5
TARGET_P99_MS = 50.0


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
    raise SystemExit(f"gunicorn did not start; see {log}")


def wrk(url: str, seconds: int, key: str | None) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx responses)."""
    cmd = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, pct("50"), pct("99"), int(bad.group(1)) if bad else 0


def combine(parts: list[tuple[float, float, float, int]]) -> tuple[float, float, float, int]:
    """Mean throughput of equal slices; median of the slices' p50; worst slice's p99."""
    rps = statistics.fmean(p[0] for p in parts)
    return (
        rps,
        statistics.median(p[1] for p in parts),
        max(p[2] for p in parts),
        sum(p[3] for p in parts),
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found (Debian: apt-get install wrk)")
    workers = max(2, 2 * (os.cpu_count() or 1))
    with throwaway_database(BENCH_DB):
        key = seed()
        from django.db import connections

        connections.close_all()
        port = free_port()
        log = Path(tempfile.gettempdir()) / "bench_api_gunicorn.log"
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
                wrk(base + path, 1, auth)  # warm-up: connections, caches
            # Interleaved slices, so a change in background load hits both sides alike.
            slices: dict[str, list] = {name: [] for name in runs}
            per_slice = max(1, args.seconds // ROUNDS)
            for _ in range(ROUNDS):
                for name, (path, auth) in runs.items():
                    slices[name].append(wrk(base + path, per_slice, auth))
            results = {name: combine(parts) for name, parts in slices.items()}
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(
        f"\ngunicorn {workers} sync workers, wrk {THREADS} threads × {CONNECTIONS} connections, "
        f"{args.seconds} s per endpoint in {ROUNDS} interleaved slices (p99: worst slice), "
        f"page of 50, {LEASES} leases and invoices, "
        f"{os.cpu_count()} cores"
    )
    rows = []
    for resource in ("lease", "invoice"):
        rps, p50, p99, bad = results[f"{resource} list"]
        frps, fp50, fp99, fbad = results[f"{resource} floor"]
        ratio = rps / frps if frps else 0.0
        rows += [
            (f"{resource} list throughput", f"{rps:,.0f} req/s", "", ""),
            (f"{resource} floor throughput", f"{frps:,.0f} req/s", "", ""),
            (
                f"{resource} list / floor",
                f"{ratio:.2f}",
                f"≥ {TARGET_RATIO}",
                verdict(ratio >= TARGET_RATIO),
            ),
            (f"{resource} list p50", f"{p50:.1f} ms", "", f"(floor {fp50:.1f} ms)"),
            (
                f"{resource} list p99",
                f"{p99:.1f} ms",
                f"< {TARGET_P99_MS:.0f} ms",
                verdict(p99 < TARGET_P99_MS),
            ),
            (f"{resource} floor p99", f"{fp99:.1f} ms", "", ""),
            (f"{resource} non-2xx", str(bad + fbad), "0", verdict(bad + fbad == 0)),
        ]
    # A closed loop of N clients has a mean latency of N / throughput (Little's law), and a p99
    # is at least the mean in practice: below this throughput no p99 target can be met.
    needed = CONNECTIONS / (TARGET_P99_MS / 1000)
    nrps, _, np99, nbad = results["no-op view"]
    rows += [
        (
            "no-op view throughput",
            f"{nrps:,.0f} req/s",
            "",
            f"(p99 {np99:.1f} ms; no database, the ceiling of any view)",
        ),
        ("no-op non-2xx", str(nbad), "0", verdict(nbad == 0)),
        (
            f"needed for a {TARGET_P99_MS:.0f} ms mean",
            f"{needed:,.0f} req/s",
            "",
            f"({CONNECTIONS} clients / {TARGET_P99_MS:.0f} ms)",
        ),
    ]
    for resource in ("lease", "invoice"):
        rps = results[f"{resource} list"][0]
        rows.append(
            (f"{resource} list cost", f"{nrps / rps:.1f} no-op requests", "", "")
            if rps
            else (f"{resource} list cost", "n/a", "", "")
        )
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
