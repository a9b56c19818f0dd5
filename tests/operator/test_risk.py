"""Revenue at risk (reclaim/risk.py, config/risk.py), checked by hand on one contract.

Lease from 2026-01-01 (UTC), 180 days → term end 2026-06-30T00:00Z, 90 days' notice, one
line at $3,000,000.00 a month. January is invoiced on 2026-01-02. Today is 2026-01-10.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from billing import services as billing
from reclaim import risk
from reclaim.models import ReclaimDecision
from tests.factories.billing import lease_with_lines
from tests.operator.test_permissions import staff
from tests.reclaim.conftest import SMALL_WORKLOAD

pytestmark = pytest.mark.django_db

RATE = Decimal("3000000.00")
TODAY = dt.date(2026, 1, 10)


@pytest.fixture
def lease():
    lease, _ = lease_with_lines(
        commencement_date=dt.date(2026, 1, 1), rates=(RATE,), with_nodes=True
    )
    billing.billing_run(now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    return lease


def report(lease, on):
    return risk.revenue_at_risk(
        kind="tenant", value=lease.tenant.slug, on=on, today=TODAY, workload=SMALL_WORKLOAD
    )


def test_back_on_may_1st_needs_notice_by_january_30th(lease):
    (line,) = report(lease, dt.date(2026, 5, 1)).lines
    # 2026-05-01 − 90 days − 1 = 2026-01-30; its effective end is 2026-05-01T00:00Z.
    assert line.notice_by == dt.date(2026, 1, 30)
    assert not line.too_late
    assert line.back_at == dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    # May whole ($3,000,000.00) + June 1–29 (29/30 × $3,000,000.00 = $2,900,000.00).
    assert line.rent_forgone == Decimal("5900000.00")
    assert line.credit == Decimal("0.00")  # only January is invoiced
    assert line.value > 0


def test_too_late_for_d_says_the_earliest_return_and_its_credit(lease):
    billing.billing_run(now=dt.datetime(2026, 3, 26, tzinfo=dt.UTC))  # through April
    (line,) = report(lease, dt.date(2026, 1, 20)).lines
    assert line.too_late
    assert line.notice_by == TODAY
    # A notice today ends at 2026-04-11T00:00Z (10 Jan + 91 days).
    assert line.back_at == dt.datetime(2026, 4, 11, tzinfo=dt.UTC)
    # April 11–30 (20/30) + May + June 1–29 = $2,000,000.00 + $3,000,000.00 + $2,900,000.00.
    assert line.rent_forgone == Decimal("7900000.00")
    # April is invoiced in advance: its last 20 days come back as credit.
    assert line.credit == Decimal("2000000.00")


def test_a_line_that_ends_before_d_ends_anyway(lease):
    rep = report(lease, dt.date(2026, 7, 1))
    (line,) = rep.lines
    assert line.ends_anyway
    assert line.back_at == dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
    assert (line.rent_forgone, line.credit, line.value) == (Decimal(0), Decimal(0), Decimal(0))
    assert rep.monthly_rent_ending == Decimal(0)
    assert rep.monthly_rent_ending_anyway == RATE
    assert rep.notice_date is None


def test_the_page_answers_in_names_and_money_and_opens_a_prefilled_decision(client, lease):
    client.force_login(staff("planner-1", "planner", perms=("leasing.view_lease",)))
    page = client.get(
        reverse("operator:revenue-at-risk"),
        {"kind": "tenant", "tenant": lease.tenant.pk, "on": "2027-01-01"},
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert lease.number in html
    assert lease.tenant.name in html
    assert "$3,000,000.00" in html
    assert 'data-testid="open-decision"' not in html  # it all ends anyway by 2027

    on = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).date()
    later, _ = lease_with_lines(
        commencement_date=on - dt.timedelta(days=60), rates=(RATE,), with_nodes=True
    )
    page = client.get(
        reverse("operator:revenue-at-risk"),
        {"kind": "tenant", "tenant": later.tenant.pk, "on": f"{on:%Y-%m-%d}"},
    )
    html = page.content.decode()
    assert "too late for D" in html
    assert 'data-testid="open-decision"' in html
    created = client.post(
        reverse("operator:reclaim:list"),
        {
            "title": f"Take back tenant {later.tenant.slug}",
            "scope": "lines",
            "lines": [later.lines.get().pk],
            "notice_date": f"{dt.datetime.now(dt.UTC).date():%Y-%m-%d}",
            "scarcity": "1.0",
        },
    )
    assert created.status_code == 302
    decision = ReclaimDecision.objects.get()
    assert [line.pk for line in decision.lines.all()] == [later.lines.get().pk]


def test_a_scope_without_its_object_is_a_form_error(client):
    client.force_login(staff("viewer-9", "viewer"))
    page = client.get(reverse("operator:revenue-at-risk"), {"kind": "site", "on": "2026-05-01"})
    assert page.status_code == 200
    assert "Choose one for this scope." in page.content.decode()
