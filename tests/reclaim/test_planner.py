"""The planner: never proposes what cannot be had by D; returns the optimum on a small case."""

import datetime as dt
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.contract_time import local_midnight
from reclaim import planner
from reclaim.planner import Need
from reclaim.services import decision_create, plan_for

from .conftest import CHEAP, DEAR, SMALL_WORKLOAD, at, make_lease

pytestmark = pytest.mark.django_db

NOTICE = dt.date(2026, 1, 10)  # 90-day notice: effective 2026-04-11; 120-day: 2026-05-11
BY = dt.date(2026, 4, 15)


@pytest.fixture
def fleet():
    """L1: a1 cheap, a2 dear (90-day notice). L2: b1 cheap, but 120-day notice."""
    _, (a1, a2) = make_lease((CHEAP, DEAR))
    _, (b1,) = make_lease((CHEAP,), notice_days=120)
    return a1, a2, b1


def run(need, notice_date=NOTICE):
    return plan_for(need=need, notice_date=notice_date, workload=SMALL_WORKLOAD)


def test_best_use_by_d_is_the_cheap_line_alone(fleet):
    a1, _, b1 = fleet
    plan = run(Need(by=BY))
    assert plan.best.line_ids == (a1.pk,)  # partial reclaim of L1
    assert plan.best.net_usd > 0
    reasons = {f.line_id: why for f, why in plan.excluded}
    assert "cannot be had by 2026-04-15" in reasons[b1.pk]


def test_a_floor_forces_the_dear_line_never_the_one_that_comes_too_late(fleet):
    a1, a2, b1 = fleet
    plan = run(Need(gpu_equivalents=160, by=BY))
    assert plan.best.line_ids == (a1.pk, a2.pk)
    assert all(b1.pk not in c.line_ids for c in plan.ranked)
    assert run(Need(gpu_equivalents=240, by=BY)).best is None  # only 160 can be had by D


def test_without_a_date_the_late_line_is_a_candidate(fleet):
    a1, _, b1 = fleet
    assert run(Need()).best.line_ids == (a1.pk, b1.pk)


def test_the_planner_returns_the_optimum_of_an_exhaustive_search(fleet):
    """Brute force through the scoring service (exact, one decision per subset)."""
    lines = list(fleet)
    best_net, best_ids = None, None
    deadline = local_midnight(BY, "UTC")
    for k in range(1, len(lines) + 1):
        for subset in combinations(lines, k):
            d = decision_create(
                title="x",
                lines=list(subset),
                notice_date=NOTICE,
                workload=SMALL_WORKLOAD,
                now=at(2026, 1, 1),
            )
            comes_back = max(
                dt.datetime.fromisoformat(p["window_start"]) for p in d.inputs["parts"]
            )
            if comes_back > deadline:
                continue  # some of it cannot be had by D
            if best_net is None or d.net_value > best_net:
                best_net, best_ids = d.net_value, tuple(sorted(x.pk for x in subset))
    plan = run(Need(by=BY))
    assert plan.best.line_ids == best_ids
    assert abs(plan.best.net_usd - float(best_net)) < 1.0  # planner floats vs exact cents


def test_the_table_over_notice_dates_never_proposes_what_cannot_be_had(fleet):
    plan = run(Need(by=BY))
    assert plan.by_notice_date[0].notice_date == NOTICE
    # The last row is the latest notice date that still makes D: 2026-04-15 − 91 days.
    assert plan.by_notice_date[-1].notice_date == dt.date(2026, 1, 14)
    for row in plan.by_notice_date:
        assert row.best is not None
        assert row.best.window_start <= local_midnight(BY, "UTC")


@settings(max_examples=25, deadline=None)
@given(days_to_d=st.integers(min_value=0, max_value=200), offset=st.integers(0, 60))
def test_never_proposes_capacity_that_cannot_be_had_by_d(days_to_d, offset):
    """Property over D and the notice date, on pure facts (no database)."""
    notice_date = dt.date(2026, 1, 1) + dt.timedelta(days=offset)
    by = notice_date + dt.timedelta(days=days_to_d)
    facts = [
        planner.LineFacts(
            line_id=i,
            lease_id=i,
            lease_number=f"L{i}",
            tenant="t",
            cluster_id=1,
            cluster_slug="c",
            site_slug="s",
            accelerator="H100",
            gpus=80,
            monthly_rate=CHEAP if i % 2 else DEAR,
            tz="UTC",
            commencement=at(2026, 1, 1),
            term_end=at(2026, 6, 30),
            line_end=at(2026, 6, 30),
            notice_days=notice_days,
            reclaimable=True,
            label=f"L{i} · t · c · 10 nodes",
        )
        for i, notice_days in enumerate((30, 60, 90, 120))
    ]
    base = {
        "schema": "landlord.scenario/1",
        "workload": SMALL_WORKLOAD,
        "pools": [
            {
                "name": "c (leased)",
                "site": "s",
                "accelerator": "H100",
                "gpus": 320,
                "fabric_gbps_per_gpu": 400.0,
                "leased": True,
            }
        ],
        "links": [],
        "economics": {},
    }
    plan = planner.plan(
        facts, Need(by=by), notice_date=notice_date, base_document=base, table=False
    )
    deadline = local_midnight(by, "UTC")
    for cand in plan.ranked:
        for line_id in cand.line_ids:
            f = facts[line_id]
            w = planner.line_window(f, notice_date)
            assert w.notice_effective_end <= deadline
            assert not w.empty


def test_planner_money_rounds_half_up_to_the_cent():
    from decimal import Decimal

    from reclaim.planner import money

    assert money(1234.565) == Decimal("1234.57"), "half-up, not quantize's half-even"
    assert money(12.005) == Decimal("12.01")
    assert money(None) == Decimal("0.00")
