"""Reclaim benchmark on PostgreSQL: score every lease line of the full-scale demo, then plan.

Usage:  DATABASE_URL=postgres://USER@HOST:PORT/ANY python bench/bench_reclaim.py

Creates a throwaway database `landlord_bench_reclaim`, seeds the full-scale demo inventory
(scale 1.0, 30,000 nodes, about 336,000 GPUs) and the demo leases, then measures (wall clock,
median of several runs):

1. Scoring: one decision per reclaimable lease line (open lines of signed leases), created and
   scored through `decision_create` — inventory seam, windows, exact rent, the model with its
   break-evens, the rows written.
2. Planning over those lines: the best use of all of them (no floor), and a need of 50,000
   H100-equivalents by a date 120 days out, each with its table over notice dates.

Target: scoring every line plus planning over them ≤ 2 s. Lines that no notice can take back
(ended or expired leases) are counted but not scored: there is nothing to decide for them.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, throwaway_database, timed, verdict

REPEAT = 3
TARGET_S = 2.0


def main() -> int:
    with throwaway_database("landlord_bench_reclaim"):
        from django.db import transaction
        from django.utils import timezone

        from clusters.demo import seed_inventory
        from leasing.demo import seed_leasing
        from leasing.models import LeaseLine
        from reclaim import selectors, services
        from reclaim.models import ReclaimDecision
        from reclaim.planner import Need

        now = timezone.now()
        with timed() as seed_t:
            with transaction.atomic():
                seed_inventory(scale=1.0)
            seed_leasing(scale=1.0, now=now)
        today = now.astimezone(dt.UTC).date()
        lines = list(selectors.reclaimable_lines().order_by("pk"))
        total_lines = LeaseLine.objects.count()
        score_times, plan_times = [], []
        plans = []
        for _ in range(REPEAT):
            ReclaimDecision.objects.all().delete()
            with timed() as t:
                for line in lines:
                    services.decision_create(
                        title=f"bench line {line.pk}",
                        lines=[line],
                        notice_date=today,
                        scope_kind="lines",
                        now=now,
                    )
            score_times.append(t[0])
            with timed() as t:
                plans = [
                    services.plan_for(need=Need(), notice_date=today),
                    services.plan_for(
                        need=Need(gpu_equivalents=50_000, by=today + dt.timedelta(days=120)),
                        notice_date=today,
                    ),
                ]
            plan_times.append(t[0])
        score = statistics.median(score_times)
        plan = statistics.median(plan_times)
        total = score + plan
        print(
            f"demo: {total_lines} lease lines, {len(lines)} reclaimable; "
            f"seeded in {seed_t[0]:.1f} s"
        )
        for p in plans:
            best = p.best.line_ids if p.best else "keep everything leased"
            print(
                f"plan {p.need}: best {best}; {p.evaluations} model evaluations, "
                f"{len(p.by_notice_date)} notice dates"
            )
        report(
            [
                (f"score {len(lines)} lines (median of {REPEAT})", f"{score:.3f} s", "", ""),
                ("plan twice over them, with tables", f"{plan:.3f} s", "", ""),
                (
                    "score + plan",
                    f"{total:.3f} s",
                    f"≤ {TARGET_S:.1f} s",
                    verdict(total <= TARGET_S),
                ),
            ]
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
