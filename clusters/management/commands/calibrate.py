"""`manage.py calibrate`: record a measured all-reduce as a link or cluster calibration.

    manage.py calibrate --link campus-1:campus-2 --nccl run.txt --ranks 16 \\
        --measured-at 2026-12-01T10:00Z --user ops [--min-bytes 67108864] [--plot fit.png]
    manage.py calibrate --cluster c1-h100 --nccl run.txt --ranks 8 --measured-at ... --user ops

Reads nccl-tests `all_reduce_perf` output, fits it piecewise (size ranges each with its own
per-step latency and usable throughput; the stored latency is the smallest sizes', the
throughput the largest sizes', `clusters/perfmodel/calibration.py`), stores them with the
data, the date and who recorded it (`clusters/calibrations.py`), prints the fit, its regimes
and what one ring would have missed and, with --plot, draws predicted vs measured (one colour
per regime). The latest calibration of a link or cluster is what `scenario_document` scores with.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from clusters import calibrations
from clusters.models import Cluster, SiteLink
from clusters.perfmodel import calibration
from clusters.perfmodel.plot import plot_predicted_vs_measured
from common.exceptions import DomainError


def _ranks(value: str) -> int:
    """``--ranks``: an integer a calibration accepts (`calibration.check_ranks`)."""
    try:
        ranks = int(value)
        calibration.check_ranks(ranks)
    except ValueError as exc:  # CalibrationError is one
        raise argparse.ArgumentTypeError(str(exc)) from None
    return ranks


class Command(BaseCommand):
    help = "Record nccl-tests all_reduce_perf output as a link or cluster calibration."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--link", help="SITE_A:SITE_B (site slugs, either order)")
        target.add_argument("--cluster", help="cluster slug")
        parser.add_argument("--nccl", required=True, help="all_reduce_perf output file")
        parser.add_argument(
            "--ranks",
            type=_ranks,
            required=True,
            help=f"ranks of the run ({calibration.MIN_RANKS} – {calibration.MAX_RANKS:,})",
        )
        parser.add_argument(
            "--measured-at", required=True, help="ISO 8601 instant with a zone (…Z or +hh:mm)"
        )
        parser.add_argument("--user", required=True, help="username of who records it")
        parser.add_argument("--min-bytes", type=int, default=0, help="leave out smaller sizes")
        parser.add_argument("--plot", help="write predicted vs measured to FILE.png or .svg")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            measured_at = dt.datetime.fromisoformat(str(opts["measured_at"]))
        except ValueError as exc:
            raise CommandError(f"--measured-at: {exc}") from exc
        if measured_at.tzinfo is None:
            raise CommandError("--measured-at needs a time zone (…Z or +hh:mm)")
        try:
            text = Path(str(opts["nccl"])).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"--nccl: {exc}") from exc
        actor = get_user_model().objects.filter(username=opts["user"]).first()
        if actor is None:
            raise CommandError(f"no user {opts['user']!r}")
        common = {
            "text": text,
            "ranks": opts["ranks"],
            "measured_at": measured_at,
            "actor": actor,
            "now": timezone.now(),
            "min_bytes": opts["min_bytes"],
            "origin": "manage.py calibrate",
        }
        try:
            if opts["link"]:
                cal: Any = calibrations.link_calibration_record(
                    link=self._link(str(opts["link"])), source="nccl_tests", **common
                )
            else:
                cluster = Cluster.objects.filter(slug=opts["cluster"]).first()
                if cluster is None:
                    raise CommandError(f"no cluster {opts['cluster']!r}")
                cal = calibrations.cluster_calibration_record(cluster=cluster, **common)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            f"{cal}: step latency {cal.step_latency_us:,.1f} µs, usable {cal.usable_gbps:,.1f} "
            f"Gbit/s over {cal.points} sizes (median error {cal.median_rel_error:.1%}, "
            f"max {cal.max_rel_error:.1%})"
        )
        for i, r in enumerate(cal.regimes, start=1):
            rate = "unbounded" if r["usable_gbps"] is None else f"{r['usable_gbps']:,.1f} Gbit/s"
            self.stdout.write(
                f"  regime {i}: {r['min_bytes']:,}–{r['max_bytes']:,} B, step latency "
                f"{r['step_latency_us']:,.2f} µs, usable {rate} (median error "
                f"{r['median_rel_error']:.1%}, max {r['max_rel_error']:.1%})"
            )
        ring = calibrations.one_ring(cal)
        if ring is not None and len(cal.regimes) > 1:
            self.stdout.write(
                f"  one ring over every size: step latency {ring.step_latency_us:,.2f} µs, "
                f"usable {ring.usable_gbps:,.1f} Gbit/s (median error "
                f"{ring.median_rel_error:.1%}, max {ring.max_rel_error:.1%})"
            )
        if opts["plot"]:
            sizes, measured, predicted = calibrations.predicted_vs_measured(cal)
            path = plot_predicted_vs_measured(
                measured,
                predicted,
                calibrations.point_groups(cal, sizes),
                opts["plot"],
                title=f"{cal}: fitted all-reduce time",
            )
            self.stdout.write(f"plot: {path}")

    @staticmethod
    def _link(spec: str) -> SiteLink:
        a, _, b = spec.partition(":")
        found = SiteLink.objects.filter(
            Q(site_a__slug=a, site_b__slug=b) | Q(site_a__slug=b, site_b__slug=a)
        ).first()
        if found is None:
            raise CommandError(f"no link between {a!r} and {b!r}")
        return found
