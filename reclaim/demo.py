"""Demo reclaim decisions on the demo leases (`leasing.demo.seed_leasing` first).

1. "Keep leasing: Northwind on campus 1" — Northwind's current campus-1 lease, notice today,
   scarcity 1: the motivating case; at today's prices its rent is worth far more than the
   capacity would be to the operator's own training (mixed generations, one slow hall).
2. "Campus 3 B200 when compute is tight" — Northwind's scheduled campus-3 lease at market rent.
   Scored at scarcity 1 (keep leased), then at a scarcity 20 % above that score's break-even:
   the re-score flips it to reclaim, so the workbench shows a flipped decision.
3. "Helios on campus 1 (too late)" — a notice today would be moot (Helios's term ends within
   90 days): an empty window, never reclaim.

Idempotent: keyed by title; a second run creates nothing. Each decision in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, cast

from django.db import transaction

from common.progress import ProgressFn, quiet_progress
from leasing.models import Lease

from . import selectors, services
from .models import ReclaimDecision

KEEP = "Keep leasing: Northwind on campus 1"
FLIP = "Campus 3 B200 when compute is tight"
MOOT = "Helios on campus 1 (too late for a notice)"


def _lease_lines(reference: str):
    lease = Lease.objects.filter(reference=reference).first()
    if lease is None:
        return None
    return selectors.scope_lines(kind="lease", lease_id=lease.pk) or None


def seed_reclaim(*, now: dt.datetime, progress: ProgressFn = quiet_progress) -> None:
    """Create the demo decisions (module docstring). Leases missing or ended are skipped."""
    today = now.astimezone(dt.UTC).date()
    steps = 3
    with transaction.atomic():
        lines = _lease_lines("demo:northwind-campus1-term2")
        if lines and not ReclaimDecision.objects.filter(title=KEEP).exists():
            services.decision_create(
                title=KEEP,
                lines=lines,
                notice_date=today,
                scope_kind="lease",
                reason="The motivating case: is campus 1 worth more to us than its rent?",
                now=now,
            )
    progress("reclaim decisions", 1, steps)
    with transaction.atomic():
        lines = _lease_lines("demo:northwind-campus3-scheduled")
        if lines and not ReclaimDecision.objects.filter(title=FLIP).exists():
            decision = services.decision_create(
                title=FLIP,
                lines=lines,
                notice_date=today,
                scope_kind="lease",
                reason="What if compute got scarce?",
                now=now,
            )
            # decision_create returns the decision scored: its assessment is written.
            break_even = cast(Any, decision.assessment)["break_even"]["scarcity_multiplier"]
            if break_even:
                decision.economics = {"scarcity_multiplier": math.ceil(break_even * 1.2 * 10) / 10}
                decision.save(update_fields=["economics"])
                services.decision_score(decision=decision, now=now)
    progress("reclaim decisions", 2, steps)
    with transaction.atomic():
        lines = _lease_lines("demo:helios-campus1")
        if lines and not ReclaimDecision.objects.filter(title=MOOT).exists():
            services.decision_create(
                title=MOOT, lines=lines, notice_date=today, scope_kind="lease", now=now
            )
    progress("reclaim decisions", 3, steps)
