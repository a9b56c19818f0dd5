"""Demo decisions: one keeps leasing, one flips with scarcity, one is moot; idempotent."""

import datetime as dt

import pytest
from django.db import transaction

from clusters.demo import seed_inventory
from leasing.demo import seed_leasing
from reclaim import demo
from reclaim.models import ReclaimDecision

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC)


def test_seed_reclaim_tells_the_story_and_is_idempotent():
    seed_inventory(scale=0.02)
    seed_leasing(scale=0.02, now=NOW)
    demo.seed_reclaim(now=NOW)
    demo.seed_reclaim(now=NOW)
    decisions = {d.title: d for d in ReclaimDecision.objects.all()}
    assert len(decisions) == 3
    keep, flip, moot = decisions[demo.KEEP], decisions[demo.FLIP], decisions[demo.MOOT]
    assert keep.recommendation == "keep_leased"
    assert keep.net_value < 0
    assert flip.recommendation == "reclaim"
    assert flip.previous_recommendation == "keep_leased"
    assert flip.flipped_at == NOW
    assert (
        flip.economics["scarcity_multiplier"] > flip.assessment["break_even"]["scarcity_multiplier"]
    )
    assert moot.window_start == moot.window_end
    assert moot.recommendation == "keep_leased"


def _keep_break_even(scale):
    seed_inventory(scale=scale)
    seed_leasing(scale=scale, now=NOW)
    demo.seed_reclaim(now=NOW)
    keep = ReclaimDecision.objects.get(title=demo.KEEP)
    be = keep.assessment["break_even"]["scarcity_multiplier"]
    print(f"scale {scale}: break-even scarcity {be:.2f}, rent {keep.rent_forgone}")
    return be


def test_keep_decision_break_even_scarcity_is_meaningful_at_every_seed_scale():
    """Rents scale with the fleet (leasing.demo), so the motivating case's break-even scarcity
    is of the full-scale order (10.16 measured at full scale; not the ~500 of a 2 % fleet at
    full-size rents) at the smallest and the default seed scale, and the two agree within the
    model's own scale effects (docs/model.md, "Where the model departs", 9)."""
    before = transaction.savepoint()
    small = _keep_break_even(0.005)
    transaction.savepoint_rollback(before)  # the same empty database for the second scale
    default = _keep_break_even(0.02)
    assert 5 < small < 20
    assert 5 < default < 20
    assert max(small, default) / min(small, default) < 1.5
