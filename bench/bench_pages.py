"""Benchmark: every operator page on the demo at full scale and at 10× the fleet.

For each scale the demo is seeded (`seed_demo --scale S`, its wall time printed) in a throwaway
PostgreSQL database, then every operator page (tests/operator/pages.py: every /operator/ page,
the admin index, every admin changelist and a change page per model, the revenue-at-risk page
with a scope...) is requested by a logged-in superuser through Django's test client: server
time, not the network. Per page: the median of RUNS requests after a warm-up, the number of
queries of one request, and the first request after the cache is emptied ("cold": what the
first visitor after a change of the fleet or the leases waits while the page's charts and
model results, cached by their inputs (common/memo.py), are computed again).

Targets (issue "Operator console"): ≤ 300 ms per page at full scale, ≤ 1 s at 10×, warm and
cold, and the same
number of queries at both scales (pages are paginated, so more rows are never more queries).
The floor, measured in the same run: the smallest page's time (a bare admin page with a single
query), to tell a noisy machine from a slow page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/bench_pages.py
    python bench/bench_pages.py --scales 1     # full scale only
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import report, throwaway_database, timed, verdict  # noqa: E402

RUNS = 5
TARGET_MS = {1.0: 300.0, 10.0: 1000.0}


def measure(scale: float) -> dict[str, object]:
    """Seed at `scale` and time every page; returns the figures (run in its own process, so
    each scale gets a fresh database and Django setup)."""
    with throwaway_database(f"landlord_bench_pages_x{scale:g}"):
        from django.contrib.auth import get_user_model
        from django.core.cache import cache
        from django.core.management import call_command
        from django.db import connection, reset_queries
        from django.test import Client
        from django.test.utils import CaptureQueriesContext, setup_test_environment
        from django.utils import timezone

        from clusters.models import Node
        from tests.operator.pages import demo_pages

        setup_test_environment()
        with timed() as seed_t:
            call_command("seed_demo", scale=scale, no_progress=True, stdout=io.StringIO())
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        user = get_user_model().objects.create_superuser("bench", "bench@landlord.example", "x")
        client = Client()
        client.force_login(user)
        pages = []
        urls = demo_pages(timezone.now().date())
        for _label, url in urls:
            client.get(url)  # the process's own warm-up: imports, templates, first model run
        for label, url in urls:
            cache.clear()
            start = time.perf_counter()
            client.get(url)  # cold: every cached chart and model result computed again
            cold_ms = (time.perf_counter() - start) * 1000
            reset_queries()  # the client's request_started clears the log the count reads
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            count = len(queries)  # read now: the next request clears the log it reads
            times = []
            for _ in range(RUNS):
                start = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            pages.append(
                {
                    "label": label,
                    "url": url,
                    "status": response.status_code,
                    "ms": statistics.median(times),
                    "cold_ms": cold_ms,
                    "queries": count,
                }
            )
        return {"seed_s": seed_t[0], "nodes": Node.objects.count(), "pages": pages}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # child: one scale, JSON
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return 0

    results = {}
    for scale in args.scales:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(scale)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        results[scale] = json.loads(child.stdout.strip().splitlines()[-1])

    scales = list(results)
    labels = [p["label"] for p in results[scales[0]]["pages"]]
    by = {s: {p["label"]: p for p in results[s]["pages"]} for s in scales}
    head = [
        "page",
        *[f"{h} ×{s:g}" for s in scales for h in ("ms", "cold ms", "queries")],
        "verdict",
    ]
    rows = []
    misses = []
    for label in labels:
        cells = [label]
        ok = True
        for s in scales:
            page = by[s].get(label)
            if page is None:
                cells += ["-", "-", "-"]
                continue
            cells += [f"{page['ms']:.0f}", f"{page['cold_ms']:.0f}", str(page["queries"])]
            slowest = max(page["ms"], page["cold_ms"])
            ok &= page["status"] == 200 and slowest <= TARGET_MS.get(s, float("inf"))
        counts = {by[s][label]["queries"] for s in scales if label in by[s]}
        ok &= len(counts) == 1
        if not ok:
            misses.append(label)
        statuses = {by[s][label]["status"] for s in scales if label in by[s]}
        cells.append(verdict(ok) + ("" if statuses == {200} else f" (HTTP {statuses})"))
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print()
    summary = []
    for s in scales:
        pages = results[s]["pages"]
        slowest = max(pages, key=lambda p: p["ms"])
        coldest = max(pages, key=lambda p: p["cold_ms"])
        floor = min(p["ms"] for p in pages)
        target = TARGET_MS.get(s)
        summary += [
            (f"×{s:g}: seed_demo wall time", f"{results[s]['seed_s']:.1f} s", "", ""),
            (f"×{s:g}: nodes", f"{results[s]['nodes']:,}", "", ""),
            (
                f"×{s:g}: slowest page ({slowest['label']})",
                f"{slowest['ms']:.0f} ms",
                f"≤ {target:.0f} ms" if target else "",
                verdict(target is None or slowest["ms"] <= target),
            ),
            (
                f"×{s:g}: slowest cold page ({coldest['label']})",
                f"{coldest['cold_ms']:.0f} ms",
                f"≤ {target:.0f} ms" if target else "",
                verdict(target is None or coldest["cold_ms"] <= target),
            ),
            (f"×{s:g}: floor (fastest page)", f"{floor:.0f} ms", "", ""),
            (f"×{s:g}: slowest / floor", f"{slowest['ms'] / floor:.0f}×", "", ""),
        ]
    summary.append(
        ("pages missing a target", str(len(misses)), "0", verdict(not misses)),
    )
    print()
    report(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
