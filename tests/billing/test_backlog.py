"""Backlog stated and enforceable: worked vector R3, notices known by then, per month."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from billing import backlog, services
from common.contract_time import local_midnight
from leasing.choices import Party
from leasing.models import Notice
from leasing.rules import notice_min_end
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db
B = Decimal("1000000000.00")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def r3_lease():
    # Term end 2027-04-05T00:00Z: commencement 2026-10-07 plus 180 days.
    lease, _ = lease_with_lines(
        commencement_date=dt.date(2026, 10, 7), term_days=180, rates=(B,), notice_days=90
    )
    assert lease.term_end == at(2027, 4, 5)
    return lease


def test_r3_stated_runs_to_the_term_end_and_enforceable_to_the_earliest_notice_end():
    lease = r3_lease()
    found = backlog.backlog(day=dt.date(2026, 12, 6))
    (row,) = found.leases
    assert row.end == at(2027, 4, 5)
    assert row.enforceable_end == at(2027, 3, 7)
    assert row.latest_useful_notice == dt.date(2027, 1, 3)
    start = at(2026, 12, 7)
    assert row.stated_total == services.lease_rent_due(lease, start, at(2027, 4, 5))
    assert row.enforceable_total == services.lease_rent_due(lease, start, at(2027, 3, 7))
    months = [dt.date(2026, 12, 1), dt.date(2027, 1, 1), dt.date(2027, 2, 1), dt.date(2027, 3, 1)]
    assert list(row.enforceable) == months
    assert list(row.stated) == [*months, dt.date(2027, 4, 1)]
    assert row.stated[dt.date(2027, 1, 1)] == B  # a whole month
    # Partial months by the billing rule (cumulative rounding: within a cent of the share).
    cent = Decimal("0.01")
    assert abs(row.stated[dt.date(2027, 4, 1)] - B * 4 / 30) <= cent
    assert abs(row.enforceable[dt.date(2027, 3, 1)] - B * 6 / 31) <= cent
    assert found.by_tenant() == {lease.tenant_id: (row.stated_total, row.enforceable_total)}


def test_a_lease_west_of_utc_counts_from_the_end_of_the_day_in_its_own_zone():
    # A UTC day ends at 18:00 the same day in Chicago: the backlog counts whole contract days.
    tz = "America/Chicago"
    lease, _ = lease_with_lines(
        commencement_date=dt.date(2026, 10, 7), tz=tz, term_days=180, rates=(B,)
    )
    (row,) = backlog.backlog(day=dt.date(2026, 12, 6)).leases
    start = local_midnight(dt.date(2026, 12, 7), tz)
    assert row.stated_total == services.lease_rent_due(lease, start, lease.term_end)
    assert row.stated_total < B * 5  # four months less a week and a day, in Chicago days


def test_a_notice_counts_from_the_day_it_was_received():
    lease = r3_lease()
    received = at(2026, 12, 20, 12)
    end = notice_min_end(dt.date(2026, 12, 20), 90, "UTC")
    Notice.objects.create(
        lease=lease,
        given_by=Party.TENANT,
        received_at=received,
        notice_date=dt.date(2026, 12, 20),
        effective_end=end,
        outcome="ends",
        status="pending",
    )
    before = backlog.backlog(day=dt.date(2026, 12, 19)).leases[0]
    after = backlog.backlog(day=dt.date(2026, 12, 20)).leases[0]
    assert before.end == at(2027, 4, 5)
    assert after.end == end == local_midnight(dt.date(2027, 3, 21), "UTC")
    # Once the lease has ended by notice, nothing is enforceable beyond the notice's end.
    assert after.enforceable_end == min(end, notice_min_end(dt.date(2026, 12, 20), 90, "UTC"))
    assert backlog.backlog(day=dt.date(2027, 4, 5)).leases == []


def test_the_operator_pages_render(client, django_user_model):
    r3_lease()
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    from django.urls import reverse

    page = client.get(reverse("billing:backlog"), {"as_of": "2026-12-06"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "<svg" in text
    assert "2027-01-03" in text
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", text)  # the end names its zone
    # The theme toggle's icons are SVGs too: the chart is the one in its figure.
    figure = text[text.index('data-testid="backlog-chart"') :]
    chart = figure[figure.index("<svg") : figure.index("</svg>")]
    assert "currentColor" in chart  # its ink follows the page's theme
    assert re.search(r">\$[0-9.,]+[kMB]?</text>", chart)  # money ticks, the one short style
    recv = client.get(reverse("billing:receivables"), {"as_of": "2026-12-06"})
    assert recv.status_code == 200
    journal = client.get(reverse("billing:journal_csv"))
    assert journal.status_code == 200
    assert journal.content.decode().startswith("date,posting,kind,account")


def test_a_notice_on_one_line_ends_that_lines_backlog_from_the_day_it_was_received():
    # Commencement 2026-12-01, term end 2027-04-05 (125 days), 90 days' notice. Line A at
    # $3,000,000.00 a month; line B at $6,200,000.00 ($200,000.00 a day in a 31-day month).
    # The operator gives notice on line B alone on 2026-12-20, to end it 2027-03-21T00:00Z.
    from leasing.notices import notice_give

    lease, (_line_a, line_b) = lease_with_lines(
        commencement_date=dt.date(2026, 12, 1),
        term_days=125,
        rates=(Decimal("3000000.00"), Decimal("6200000.00")),
        notice_days=90,
        with_nodes=True,
    )
    assert lease.term_end == at(2027, 4, 5)
    notice = notice_give(
        lease=lease,
        party=Party.OPERATOR,
        lines=[line_b],
        requested_end=at(2027, 3, 21),
        now=at(2026, 12, 20, 12),
    )
    assert notice.effective_end == at(2027, 3, 21)
    jan, feb, mar, apr = (dt.date(2027, m, 1) for m in (1, 2, 3, 4))

    # As of 2026-12-31: A runs to the term end; B stops after 20 days of March (20 × 200,000).
    # Enforceable: cut at 2026-12-31 + 91 days = 2027-04-01T00:00Z.
    (row,) = backlog.backlog(day=dt.date(2026, 12, 31)).leases
    assert row.end == at(2027, 4, 5)  # line A still runs to the term end
    assert row.enforceable_end == at(2027, 4, 1)
    assert row.stated == {
        jan: Decimal("9200000.00"),
        feb: Decimal("9200000.00"),
        mar: Decimal("7000000.00"),  # 3,000,000 + 4,000,000
        apr: Decimal("400000.00"),  # A: 3,000,000 × 4/30; B: nothing
    }
    assert row.stated_total == Decimal("25800000.00")
    assert row.enforceable == {
        jan: Decimal("9200000.00"),
        feb: Decimal("9200000.00"),
        mar: Decimal("7000000.00"),
    }
    assert row.enforceable_total == Decimal("25400000.00")

    # As of 2026-12-19 the notice was not known: B runs to the term end (its stored end, set
    # when the notice came, is not what was known then). April: 9,200,000 × 4/30.
    (before,) = backlog.backlog(day=dt.date(2026, 12, 19)).leases
    assert before.stated[mar] == Decimal("9200000.00")
    assert before.stated[apr] == Decimal("1226666.67")
    assert before.enforceable_end == at(2027, 3, 20)  # 2026-12-19 + 91 days
    assert before.enforceable[mar] == Decimal("5638709.68")  # 9,200,000 × 19/31 = 5,638,709.677…


def test_notices_on_every_line_end_the_lease_when_its_last_line_ends():
    from leasing.notices import notice_give

    lease, (line_a, line_b) = lease_with_lines(
        commencement_date=dt.date(2026, 12, 1),
        term_days=125,
        rates=(Decimal("3000000.00"), Decimal("6200000.00")),
        notice_days=90,
        with_nodes=True,
    )
    for line, end in ((line_a, at(2027, 3, 25)), (line_b, at(2027, 3, 21))):
        notice_give(
            lease=lease,
            party=Party.TENANT,
            lines=[line],
            requested_end=end,
            now=at(2026, 12, 20, 12),
        )
    (row,) = backlog.backlog(day=dt.date(2026, 12, 31)).leases
    assert row.end == at(2027, 3, 25)
    assert row.latest_useful_notice < dt.date(2027, 1, 3)  # earlier than for the term end
    # March: A 3,000,000 × 24/31 = 2,322,580.645… ; B 4,000,000.00; nothing in April.
    assert row.stated[dt.date(2027, 3, 1)] == Decimal("6322580.65")
    assert dt.date(2027, 4, 1) not in row.stated
