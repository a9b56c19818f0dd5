"""`manage.py seed_demo [--scale S]`: build the demo operator: inventory, leases, invoices and
reclaim decisions. It lives in the top app because only the top may import every layer.

Idempotent: a second run with the same scale changes nothing. Progress bars go to stderr.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from billing.demo import seed_billing
from billing.fleet_demo import seed_fleet_money
from clusters.demo import seed_inventory
from common.progress import Progress
from leasing.demo import seed_leasing
from leasing.incident_demo import seed_incidents
from leasing.maintenance import seed_demo_maintenance
from leasing.replacement import seed_demo_replacement
from reclaim.demo import seed_reclaim

# Ten times the full-size fleet: the size the operator pages are benchmarked at
# (bench/bench_pages.py), the inventory's hostnames still distinct and the leases the same.
MAX_SCALE = 10.0


class Command(BaseCommand):
    help = "Create (or complete) the demo: inventory, leases, invoices and reclaim decisions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help=(
                "Size of the fleet relative to the full-size demo (1.0 ≈ 336,000 GPUs; 0.01 for"
                " quick runs; up to 10 to measure the operator pages on a larger fleet)."
            ),
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")

    def handle(self, *args: object, scale: float, no_progress: bool, **options: object) -> None:
        if not 0 < scale <= MAX_SCALE:
            raise CommandError(f"--scale must be in (0, {MAX_SCALE:g}].")
        started = time.perf_counter()
        progress = Progress(disable=no_progress)
        now = timezone.now()
        with transaction.atomic():
            created = seed_inventory(scale=scale, progress=progress)
        with transaction.atomic():
            created |= seed_leasing(scale=scale, now=now, progress=progress)
        created |= seed_incidents(now=now)
        created |= seed_demo_replacement(now=now)
        # Billing and reclaim scoring commit per step: both are idempotent and resume.
        seed_billing(now=now, progress=progress)
        seed_fleet_money(now=now)
        seed_reclaim(now=now, progress=progress)
        created |= seed_demo_maintenance(now=now)
        progress.close()
        summary = ", ".join(f"{n} {kind}" for kind, n in created.items())
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready at {now:%Y-%m-%d %H:%M} UTC ({elapsed:.1f} s).")
        )
        self.stdout.write(f"Created: {summary}.")
        if scale != 1:
            self.stdout.write(
                f"Scale {scale:g}: the headline rents are scaled with the fleet (x{scale:g}),"
                " so rents per GPU are full-scale figures and the reclaim break-evens of the"
                " same order as at full scale (docs/model.md)."
            )
