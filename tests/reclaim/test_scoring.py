"""Scoring: windows from the notice rules, exact rent forgone, stored inputs re-run exactly."""

import datetime as dt
import json
from decimal import Decimal
from fractions import Fraction

import pytest

from billing import proration
from clusters import perfmodel
from reclaim import services
from reclaim.choices import ReclaimStatus
from reclaim.services import decision_create, decision_score

from .conftest import CHEAP, DEAR, SMALL_WORKLOAD, at, make_lease

pytestmark = pytest.mark.django_db

NOW = at(2025, 12, 20, 9)


def create(lines, notice_date, **kw):
    kw.setdefault("workload", SMALL_WORKLOAD)
    return decision_create(
        title="test", lines=lines, notice_date=notice_date, scope_kind="lines", now=NOW, **kw
    )


def test_stored_assessment_equals_a_fresh_run_on_the_stored_inputs():
    _, lines = make_lease((CHEAP, DEAR))
    _, other = make_lease((DEAR,), commencement_date=dt.date(2026, 2, 1))
    decision = create([*lines, *other], dt.date(2026, 1, 10))
    assert decision.model_version == perfmodel.MODEL_VERSION
    parts = decision.inputs["parts"]
    assert len(parts) == 2  # two leases, two windows
    for part, stored in zip(parts, decision.assessment["parts"], strict=True):
        fresh = perfmodel.assess(perfmodel.Scenario.from_dict(part["scenario"])).to_dict()
        assert fresh == stored
    assert services.decision_stored_matches_model(decision)


def test_window_is_effective_end_to_term_end_and_rent_is_the_exact_accrual():
    lease, lines = make_lease((CHEAP, DEAR))
    decision = create(lines, dt.date(2026, 1, 1))  # T2: effective end 2026-04-02
    assert decision.status == ReclaimStatus.SCORED
    assert decision.window_start == at(2026, 4, 2)
    assert decision.window_end == lease.term_end == at(2026, 6, 30)
    exact = sum(
        (proration.accrual(r, at(2026, 4, 2), at(2026, 6, 30), "UTC") for r in (CHEAP, DEAR)),
        Fraction(0),
    )
    assert decision.rent_forgone == proration.to_money(exact)
    (part,) = decision.assessment["parts"]
    assert part["horizon_days"] == 89
    # The model's rent is the exact rent forgone (to the cent), so break-evens agree.
    assert abs(Decimal(str(part["rent_usd"])) - decision.rent_forgone) <= Decimal("0.01")
    assert decision.net_value == decision.internal_value - decision.rent_forgone


def test_a_notice_one_day_later_shortens_the_window_by_one_day():
    _, lines = make_lease((DEAR,))
    first = create(lines, dt.date(2026, 2, 15))  # T3: 2026-05-17
    later = create(lines, dt.date(2026, 2, 16))
    assert first.window_start == at(2026, 5, 17)
    assert later.window_start - first.window_start == dt.timedelta(days=1)
    assert later.window_end == first.window_end
    days = [d.assessment["parts"][0]["horizon_days"] for d in (first, later)]
    assert days[0] - days[1] == 1
    assert later.rent_forgone < first.rent_forgone
    assert later.internal_value < first.internal_value


def test_a_moot_notice_gives_an_empty_window_and_never_recommends_reclaim():
    _, lines = make_lease((CHEAP,))
    # T5: a notice on 2026-03-31 would end after the term: moot. Even at absurd scarcity.
    decision = create(lines, dt.date(2026, 3, 31), economics={"scarcity_multiplier": 1e6})
    assert decision.window_start == decision.window_end == at(2026, 6, 30)
    assert decision.internal_value == decision.rent_forgone == Decimal("0.00")
    assert decision.recommendation == "keep_leased"
    assert services.planned_notices(decision) == []
    # The latest useful notice (T4) still has a one-day window.
    useful = create(lines, dt.date(2026, 3, 30), economics={"scarcity_multiplier": 1e6})
    assert useful.window_end - useful.window_start == dt.timedelta(days=1)
    assert useful.recommendation == "reclaim"


def test_cheap_rent_recommends_reclaim_and_dear_rent_keeps_leasing():
    _, cheap = make_lease((CHEAP,))
    _, dear = make_lease((DEAR,))
    assert create(cheap, dt.date(2026, 1, 10)).recommendation == "reclaim"
    keep = create(dear, dt.date(2026, 1, 10))
    assert keep.recommendation == "keep_leased"
    scarcity = keep.assessment["break_even"]["scarcity_multiplier"]
    flipped = create(dear, dt.date(2026, 1, 10), economics={"scarcity_multiplier": scarcity * 1.1})
    assert flipped.recommendation == "reclaim"


def test_partial_reclaim_values_only_the_chosen_lines():
    _, lines = make_lease((CHEAP, DEAR))
    one = create(lines[:1], dt.date(2026, 1, 10))
    both = create(lines, dt.date(2026, 1, 10))
    (pool,) = one.inputs["parts"][0]["scenario"]["pools"]
    assert pool["gpus"] == 80
    assert pool["leased"] is True
    assert one.rent_forgone < both.rent_forgone


def test_horizon_and_rent_cannot_be_overridden():
    _, lines = make_lease((CHEAP,))
    with pytest.raises(services.InvalidInput):
        create(lines, dt.date(2026, 1, 10), economics={"horizon_days": 365})


def test_rescoring_a_decision_records_a_flip(django_assert_max_num_queries):
    _, lines = make_lease((DEAR,))
    decision = create(lines, dt.date(2026, 1, 10))
    assert decision.recommendation == "keep_leased"
    lines[0].monthly_rate = CHEAP
    lines[0].save()
    later = at(2025, 12, 21, 2)
    decision = decision_score(decision=decision, now=later)
    assert decision.recommendation == "reclaim"
    assert decision.previous_recommendation == "keep_leased"
    assert decision.flipped_at == later


@pytest.mark.parametrize(
    "workload",
    [
        {"params": 10**400},
        {"params": float("nan")},
        {"params": float("inf")},
        {"params": json.loads("[" * 40 + "]" * 40)},
    ],
    ids=["huge_int", "nan", "inf", "deep"],
)
def test_unbounded_workload_overrides_are_refused_and_nothing_is_written(workload):
    from reclaim.models import ReclaimDecision

    _, lines = make_lease((CHEAP,))
    before = ReclaimDecision.objects.count()
    with pytest.raises(services.InvalidInput) as info:
        create(lines, dt.date(2026, 1, 10), workload=workload)
    assert "workload" in info.value.extra["fields"]
    assert ReclaimDecision.objects.count() == before
