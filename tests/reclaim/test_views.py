"""The workbench: staff only, bounded queries, approve and reject buttons, create, planner."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.html import escape

from common.money import format_money
from leasing.models import LeaseLine, Notice
from reclaim import risk, services
from reclaim.choices import ReclaimStatus
from reclaim.models import ReclaimDecision
from reclaim.services import decision_create
from tests.factories.clusters import SiteFactory
from tests.factories.leasing import UserFactory

from .conftest import CHEAP, DEAR, SMALL_WORKLOAD, at, make_lease

pytestmark = pytest.mark.django_db


def today():
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def live(staff):
    """Decisions on leases running now (so the approve button can act today)."""
    start = today() - dt.timedelta(days=10)
    made = []
    for i, rate in enumerate((CHEAP, DEAR, CHEAP)):
        _, lines = make_lease((rate, DEAR), commencement_date=start)
        made.append(
            decision_create(
                title=f"decision {i}",
                lines=lines,
                notice_date=today() + dt.timedelta(days=1),
                workload=SMALL_WORKLOAD,
                actor=staff,
            )
        )
    return made


@pytest.fixture
def client_staff(client, staff):
    client.force_login(staff)
    return client


def test_pages_are_staff_only(client, live):
    client.force_login(UserFactory(username="tenant-user", is_staff=False))
    for url in (
        reverse("operator:reclaim:list"),
        reverse("operator:reclaim:detail", args=[live[0].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login/" in response["Location"]
    response = client.post(reverse("operator:reclaim:approve", args=[live[0].pk]))
    assert response.status_code == 302
    assert Notice.objects.count() == 0


def test_list_shows_money_side_by_side_with_bounded_queries(
    client_staff, live, django_assert_max_num_queries
):
    url = reverse("operator:reclaim:list")
    with django_assert_max_num_queries(15) as captured:
        response = client_staff.get(url)
    assert response.status_code == 200
    few = len(captured)
    for i in range(5):  # more decisions, same number of queries
        _, lines = make_lease((CHEAP,), commencement_date=today())
        decision_create(
            title=f"more {i}", lines=lines, notice_date=today(), workload=SMALL_WORKLOAD
        )
    with django_assert_max_num_queries(few):
        response = client_staff.get(url)
    body = response.content.decode()
    assert "decision 0" in body
    assert "Reclaim" in body
    assert "Keep leased" in body


def test_flipped_decisions_carry_a_badge(client_staff, live):
    ReclaimDecision.objects.filter(pk=live[0].pk).update(
        previous_recommendation="keep_leased", flipped_at=at(2026, 1, 1)
    )
    body = client_staff.get(reverse("operator:reclaim:list")).content.decode()
    assert body.count('data-testid="flipped"') == 1


def test_detail_renders_losses_placements_and_sensitivities(
    client_staff, live, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = client_staff.get(reverse("operator:reclaim:detail", args=[live[1].pk]))
    assert response.status_code == 200
    body = response.content.decode()
    for testid in (
        "losses",
        "placements",
        "placements-chart",
        "sensitivity-scarcity",
        "sensitivity-rent",
        "sensitivity-bandwidth",
        "approve",
        "reject",
    ):
        assert f'data-testid="{testid}"' in body
    assert "break-even" in body
    assert "scarcity multiplier" in body


def test_the_approve_button_gives_notice(client_staff, live):
    decision = live[0]
    url = reverse("operator:reclaim:approve", args=[decision.pk])
    # Unconfirmed, a POST only shows what approving would do.
    assert client_staff.post(url)["Location"] == url
    assert Notice.objects.count() == 0
    response = client_staff.post(url, {"confirm": "1"}, follow=True)
    assert response.status_code == 200
    decision.refresh_from_db()
    assert decision.status == ReclaimStatus.NOTICE_ISSUED
    assert Notice.objects.count() == 1
    assert "Notice issued" in response.content.decode()
    # A second press is refused with a message, nothing more is written.
    response = client_staff.post(url, {"confirm": "1"}, follow=True)
    assert "refused" in response.content.decode()
    assert Notice.objects.count() == 1


def test_the_reject_button(client_staff, live):
    client_staff.post(reverse("operator:reclaim:reject", args=[live[1].pk]), {"reason": "no"})
    live[1].refresh_from_db()
    assert live[1].status == ReclaimStatus.REJECTED
    assert Notice.objects.count() == 0


def test_approving_first_shows_the_money_the_dates_and_who_is_told(client_staff, live):
    decision = live[0]
    page = client_staff.get(reverse("operator:reclaim:approve", args=[decision.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="confirm-approve"' in html
    effects = risk.approval_effects(services.planned_notices(decision), decision.notice_date)
    assert effects
    for effect in effects:
        assert effect.facts.lease_number in html
        assert effect.facts.tenant in html
        assert format_money(effect.rent_forgone) in html
    assert format_money(sum((e.rent_forgone for e in effects), Decimal(0))) in html
    assert Notice.objects.count() == 0  # looking writes nothing


def test_an_approval_that_would_change_nothing_is_not_offered(client_staff, live):
    decision = live[0]
    # A notice date after every line has ended anyway: nothing would come back earlier.
    decision.notice_date = dt.date(2100, 1, 1)
    decision.save(update_fields=["notice_date"])
    page = client_staff.get(reverse("operator:reclaim:approve", args=[decision.pk]))
    html = page.content.decode()
    assert 'data-testid="approve-nothing"' in html
    assert 'data-testid="confirm-approve"' not in html


def test_create_form_scores_a_whole_lease(client_staff, staff):
    lease, _ = make_lease((CHEAP, DEAR), commencement_date=today())
    response = client_staff.post(
        reverse("operator:reclaim:list"),
        {
            "title": "from the form",
            "scope": "lease",
            "lease": lease.pk,
            "notice_date": today().isoformat(),
            "scarcity": "2.5",
        },
    )
    decision = ReclaimDecision.objects.get(title="from the form")
    assert response.status_code == 302
    assert decision.status == ReclaimStatus.SCORED
    assert decision.lines.count() == 2
    assert decision.economics == {"scarcity_multiplier": 2.5}
    assert decision.created_by == staff


def plan_page(client, gpu_equivalents):
    """The workbench list with the planner run for an H100-equivalent need, notice today."""
    return client.get(
        reverse("operator:reclaim:list"),
        {
            "plan": "1",
            "gpu_equivalents": str(gpu_equivalents),
            "reference": "H100",
            "notice_date": today().isoformat(),
            "scarcity": "1",
        },
    )


def test_planner_form_renders_a_proposal_and_the_notice_date_table(client_staff, live):
    response = plan_page(client_staff, 0)
    body = response.content.decode()
    assert 'data-testid="plan-best"' in body
    assert 'data-testid="plan-table"' in body


def test_detail_shows_the_decision_with_its_uncertainty(client_staff, live):
    decision = live[1]
    unc = decision.uncertainty
    assert unc["schema"] == "landlord.uncertainty/2"
    assert unc["samples"] == 10_000
    assert 0.0 <= unc["probability_reclaim"] <= 1.0
    # Drawn around the decision as scored: the base is the stored net (every part's added).
    assert unc["net_usd"]["base"] == pytest.approx(float(decision.net_value), rel=1e-9, abs=0.01)
    assert all(r["kind"] in ("factor", "shift") for r in unc["ranges"])
    # Stored with the decision: a fresh run with the same seed gives the same document.
    from reclaim.services import decision_uncertainty

    assert decision_uncertainty(decision.inputs["parts"], seed=decision.pk) == unc
    body = client_staff.get(reverse("operator:reclaim:detail", args=[decision.pk])).content
    text = body.decode()
    for testid in (
        "uncertainty",
        "probability-reclaim",
        "uncertainty-base",
        "uncertainty-ranges",
        "tornado",
    ):
        assert f'data-testid="{testid}"' in text
    assert "× the scored value" in text
    assert "+ the scored value" in text
    assert "each drawn around the value this decision was scored with." in text
    assert "as scored (every input at its scored value, the centre of the chart)." in text
    assert 'data-testid="uncertainty-schema-note"' not in text
    assert "sets the value" not in text
    # A shift's mode at 0 (triangular around the scored value) is a mode, not "uniform".
    shift = next(r for r in unc["ranges"] if r["kind"] == "shift" and r["mode"] == 0.0)
    row = text.split(f"<td>{shift['knob']}</td>")[1].split("</tr>")[0]
    assert ">0.0</td>" in row
    assert "uniform" not in row
    assert "What moves the answer" in text
    assert f"{round(unc['probability_reclaim'] * 100)} %" in text


# A document as landlord.uncertainty/1 stored it (its UncertainDecision.to_dict over its default
# ranges): ranges without a kind, the base at the ranges' modes, the tornado over the same knobs.
V1_RANGES = [
    ("scarcity_factor", 0.5, 2.0, 1.0),
    ("mfu_factor", 0.85, 1.10, 1.0),
    ("jitter_cv", 0.01, 0.05, 0.02),
    ("mtbf_factor", 0.5, 1.5, 1.0),
    ("link_bandwidth_factor", 0.5, 1.0, 0.9),
    ("link_efficiency", 0.6, 0.95, None),
    ("restart_cost_s", 300.0, 1800.0, 600.0),
    ("load_imbalance_cv", 0.0, 0.10, None),
    ("slow_worker_fraction", 0.0, 0.002, None),
]


def v1_document() -> dict:
    bars = [
        {
            "knob": knob,
            "low": low,
            "high": high,
            "net_at_low_usd": -4_100_000.0 - 250_000.0 * i,
            "net_at_high_usd": -3_900_000.0 + 180_000.0 * i,
            "swing_usd": 200_000.0 + 430_000.0 * i,
        }
        for i, (knob, low, high, _) in enumerate(V1_RANGES)
    ]
    return {
        "schema": "landlord.uncertainty/1",
        "samples": 10_000,
        "seed": 7,
        "ranges": [
            {"knob": knob, "low": low, "high": high, "mode": mode}
            for knob, low, high, mode in V1_RANGES
        ],
        "probability_reclaim": 0.1763,
        "net_usd": {
            "mean": -4_020_000.12,
            "p5": -9_560_000.0,
            "p50": -4_200_000.0,
            "p95": 3_070_000.0,
            "base": -4_012_345.67,
        },
        "tornado": sorted(bars, key=lambda b: b["swing_usd"], reverse=True),
    }


def ranges_rows(text: str) -> dict[str, str]:
    """The ranges table's rows by input: the row's "drawn as" cell."""
    table = text.split('data-testid="uncertainty-ranges"')[1].split("</table>")[0]
    rows = {}
    for row in table.split("<tr>")[2:]:  # after the table head
        cells = [c.split("</td>")[0] for c in row.split("<td")[1:]]
        rows[cells[0].lstrip(">")] = cells[1].lstrip(">")
    return rows


def test_detail_shows_a_schema_1_uncertainty_with_its_own_meaning(client_staff, live):
    """Stored before the ranges were drawn around the scored values: multipliers are factors,
    the other knobs set the value, the base is at the ranges' modes, and the page says so."""
    decision = live[0]
    doc = v1_document()
    ReclaimDecision.objects.filter(pk=decision.pk).update(uncertainty=doc)
    text = client_staff.get(reverse("operator:reclaim:detail", args=[decision.pk])).content.decode()
    rows = ranges_rows(text)
    assert set(rows) == {knob for knob, *_ in V1_RANGES}
    factors = {"scarcity_factor", "mfu_factor", "mtbf_factor", "link_bandwidth_factor"}
    for knob, drawn_as in rows.items():
        assert drawn_as == ("× the scored value" if knob in factors else "sets the value"), knob
    # No /2 wording: no caption of draws around the scored values, no base "as scored".
    assert "drawn around the value this decision was scored with" not in text
    assert "every input at its scored value" not in text
    assert "+ the scored value" not in text
    assert "the value itself" not in text
    base = text.split('data-testid="uncertainty-base">')[1].split("</p>")[0]
    assert format_money(Decimal("-4012345.67")) in base
    assert escape("at the ranges' modes") in base
    assert "not the decision as scored" in base
    note = text.split('data-testid="uncertainty-schema-note">')[1].split("</p>")[0]
    assert "Stored before the ranges were drawn around the scored values" in note
    assert "Re-scoring gives the current form." in note
    # The tornado names the bars as /1 drew them: values set outright, multipliers with ×.
    tornado = text.split('data-testid="tornado">')[1].split("</figure>")[0]
    assert "jitter cv 0.01–0.05" in tornado
    assert "restart cost s 300–1800" in tornado
    assert "link bandwidth × 0.5–1" in tornado
    assert "jitter_cv" not in tornado


def test_planner_names_lines_by_lease_tenant_cluster_and_size_with_money(client_staff, live):
    response = plan_page(client_staff, 80)  # a need, so a set is proposed whatever it nets
    plan = response.context["plan"]
    assert plan.best is not None
    body = response.content.decode()
    best = body.split('data-testid="plan-best"')[1].split("</p>")[0]
    lines = LeaseLine.objects.select_related("lease__tenant", "cluster").filter(
        pk__in=plan.best.line_ids
    )
    for line in lines:
        assert line.label in best
        assert line.lease.tenant.name in best
    assert "Take back lines" not in best
    assert "USD" not in best
    assert format_money(plan.best.rent_usd) in best
    assert format_money(Decimal(plan.best.net_usd)) in best


def test_detail_names_notices_and_offers_approval_only_where_it_changes_something(
    client_staff, live, staff
):
    decision = live[0]
    url = reverse("operator:reclaim:detail", args=[decision.pk])
    html = client_staff.get(url).content.decode()
    assert 'data-testid="approve"' in html
    assert 'data-testid="approve-nothing"' not in html
    assert "USD" not in html.split('data-testid="placements"')[1].split("</table>")[0]

    moot = live[2]
    moot.notice_date = dt.date(2100, 1, 1)  # every line has ended by then: nothing to gain
    moot.save(update_fields=["notice_date"])
    html = client_staff.get(reverse("operator:reclaim:detail", args=[moot.pk])).content.decode()
    assert 'data-testid="approve"' not in html
    assert 'data-testid="approve-nothing"' in html

    services.decision_approve(decision=decision, actor=staff)
    html = client_staff.get(url).content.decode()
    notice = decision.notices.select_related("lease__tenant").get()
    assert escape(str(notice)) in html
    assert notice.lease.number in str(notice)
    assert notice.lease.tenant.name in str(notice)
    assert f"#{notice.pk} on lease" not in html


def test_detail_says_none_for_a_missing_scarcity_break_even(client_staff, live):
    decision = live[1]
    decision.assessment["break_even"]["scarcity_multiplier"] = None
    decision.save(update_fields=["assessment"])
    html = client_staff.get(reverse("operator:reclaim:detail", args=[decision.pk])).content
    text = html.decode()
    assert "scarcity none," in text
    assert "none×" not in text


def test_detail_shows_every_flip_per_link_and_per_generation(client_staff, live):
    """A part whose assessment flips several times: the page lists every flip in words, the
    links named by their campuses."""
    decision = live[1]
    east, west = SiteFactory(name="Campus 1"), SiteFactory(name="Campus 2")
    part = decision.assessment["parts"][0]
    part["break_even"] |= {
        "link_bandwidth_flips_gbps": [
            {"at": 1600.0, "to": "reclaim"},
            {"at": 25000.0, "to": "keep_leased"},
        ],
        "per_link": [
            {
                "link": 0,
                "a": east.slug,
                "b": west.slug,
                "flips": [{"at": 800.0, "to": "reclaim"}, {"at": 3200.0, "to": "keep_leased"}],
            }
        ],
        "per_generation": [
            {"accelerator": "H100", "speed_factor_flips": [{"at": 1.5, "to": "reclaim"}]}
        ],
    }
    decision.save(update_fields=["assessment"])
    text = client_staff.get(reverse("operator:reclaim:detail", args=[decision.pk])).content
    table = text.decode().split('data-testid="flips"')[1].split("</table>")[0]
    assert "reclaim wins above 1.6 Tbit/s; keeping it leased wins above 25 Tbit/s" in table
    assert "Campus 1 ↔ Campus 2 alone" in table
    assert "reclaim wins above 800 Gbit/s; keeping it leased wins above 3.2 Tbit/s" in table
    assert "H100 speed" in table
    assert "reclaim wins above 1.5× its peak" in table
