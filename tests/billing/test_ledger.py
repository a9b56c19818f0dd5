"""The revenue ledger: worked vector R2, daily recognition once per day with catch-up, month
close, the CSV journal, and the roll-forward property over random histories."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billing import ledger, payments, services
from billing.choices import LedgerAccount, PostingKind
from billing.models import CreditNote, Invoice, Posting, RecognitionRun
from billing.tasks import recognize_revenue
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import TenantFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
A = LedgerAccount


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def r2_world():
    lease, _ = lease_with_lines(
        commencement_date=dt.date(2026, 12, 1), rates=(Decimal("3100000.00"),), term_days=31
    )
    services.billing_run(now=at(2026, 11, 24, 0, 10))  # December, seven days ahead
    return lease, Invoice.objects.get(lease=lease)


def test_r2_deferred_at_issue_then_recognized_by_day():
    _, invoice = r2_world()
    assert invoice.issued_at.month == 11
    bal = ledger.balances(through=dt.date(2026, 11, 30))
    assert (bal[A.AR], bal[A.DEFERRED], bal[A.REVENUE]) == (
        Decimal("3100000.00"),
        Decimal("-3100000.00"),
        0,
    )
    ledger.recognize_due(now=at(2026, 12, 16, 0, 40))  # catches up from the issue day
    runs = dict(RecognitionRun.objects.values_list("day", "amount"))
    assert runs[dt.date(2026, 11, 30)] == 0
    assert all(runs[dt.date(2026, 12, d)] == Decimal("100000.00") for d in range(1, 16))
    closing = ledger.balances(through=dt.date(2026, 12, 15))
    assert -closing[A.REVENUE] == Decimal("1500000.00")
    assert -closing[A.DEFERRED] == Decimal("1600000.00")
    assert ledger.deferred_of(invoice=invoice, through=dt.date(2026, 12, 15)) == Decimal(
        "1600000.00"
    )

    ledger.recognize_due(now=at(2027, 1, 2))
    december = ledger.month_close(dt.date(2026, 12, 1))
    assert (december.opening_deferred, december.billed, december.recognized) == (
        Decimal("3100000.00"),
        0,
        Decimal("3100000.00"),
    )
    assert december.closing_deferred == 0
    assert december.ties
    november = ledger.month_close(dt.date(2026, 11, 1))
    assert (november.billed, november.closing_deferred) == (Decimal("3100000.00"),) * 2


def test_a_day_is_recognized_once_and_a_missed_stretch_is_caught_up():
    r2_world()
    first = recognize_revenue.apply(kwargs={"now": "2026-12-05T00:40:00+00:00"}).get()
    assert first["days"][-1] == "2026-12-04"
    again = recognize_revenue.apply(kwargs={"now": "2026-12-05T00:45:00+00:00"}).get()
    assert again["days"] == []  # a duplicate beat: nothing twice
    assert ledger.recognize_day(day=dt.date(2026, 12, 3)).ran is False
    # Ten days of downtime, then one run catches up day by day.
    later = recognize_revenue.apply(kwargs={"now": "2026-12-15T00:40:00+00:00"}).get()
    assert later["days"] == [f"2026-12-{d:02d}" for d in range(5, 15)]
    assert RecognitionRun.objects.filter(day__month=12).count() == 14
    assert -ledger.balances()[A.REVENUE] == Decimal("1400000.00")


def test_a_credit_note_takes_back_revenue_already_recognized():
    lease, _invoice = r2_world()
    ledger.recognize_due(now=at(2026, 12, 21))  # through the 20th: $2,000,000.00
    lease.effective_end = at(2026, 12, 11)  # ends after the 10th: 21 days credited
    lease.save(update_fields=["effective_end"])
    (note,) = services.credit_notes_for_changes(lease=lease, now=at(2026, 12, 21, 12))
    assert note.total == Decimal("2100000.00")
    ledger.recognize_due(now=at(2026, 12, 22))
    assert -ledger.balances()[A.REVENUE] == Decimal("1000000.00")
    ledger.recognize_due(now=at(2027, 1, 5))
    bal = ledger.balances()
    assert (-bal[A.REVENUE], bal[A.DEFERRED]) == (Decimal("1000000.00"), 0)
    assert ledger.month_close(dt.date(2026, 12, 1)).ties


def test_the_journal_exports_as_balanced_csv():
    tenant = TenantFactory()
    _lease, _ = lease_with_lines(tenant=tenant, commencement_date=dt.date(2026, 12, 1))
    services.billing_run(now=at(2026, 12, 1))
    payments.payment_record(
        tenant=tenant,
        amount="1000.00",
        value_date=dt.date(2026, 12, 2),
        reference="W",
        now=at(2026, 12, 2),
    )
    rows = list(csv.DictReader(io.StringIO(ledger.journal_csv())))
    assert len(rows) == 2 * Posting.objects.count()
    debits = sum(Decimal(r["debit"] or 0) for r in rows)
    credits = sum(Decimal(r["credit"] or 0) for r in rows)
    assert debits == credits > 0
    assert {r["account"] for r in rows} == {"ar", "deferred", "cash", "customer_credit"}


# --- the property -----------------------------------------------------------------------------

history = st.fixed_dictionaries(
    {
        "leases": st.lists(
            st.tuples(
                st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 4, 30)),
                st.integers(min_value=10, max_value=120),  # term days
                st.decimals(min_value=Decimal("1"), max_value=Decimal("90000000"), places=2),
            ),
            min_size=1,
            max_size=3,
        ),
        # (day offset from 2026-01-01, action, argument)
        "steps": st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=200),
                st.sampled_from(["bill", "recognize", "pay", "end_early", "refund"]),
                st.integers(min_value=0, max_value=99),
            ),
            min_size=1,
            max_size=10,
        ),
    }
)


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure is printed unshrunk
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=history)
def test_month_close_rolls_forward_and_balances_over_random_histories(spec):
    sid = transaction.savepoint()
    try:
        _check_history(spec)
    finally:
        transaction.savepoint_rollback(sid)


def _check_history(spec):
    tenant = TenantFactory()
    leases = [
        lease_with_lines(tenant=tenant, commencement_date=start, term_days=term, rates=(rate,))[0]
        for start, term, rate in spec["leases"]
    ]
    origin = at(2026, 1, 1)
    for offset, action, arg in sorted(spec["steps"]):
        now = origin + dt.timedelta(days=offset, hours=1)
        if action == "bill":
            services.billing_run(now=now)
        elif action == "recognize":
            ledger.recognize_day(day=now.date() - dt.timedelta(days=1), now=now)
        elif action == "pay":
            payments.payment_record(
                tenant=tenant,
                amount=Decimal(arg + 1) * Decimal("1234567.89"),
                value_date=now.date(),
                reference=f"W{offset}",
                now=now,
            )
        elif action == "end_early":
            lease = leases[arg % len(leases)]
            day = now.date() - dt.timedelta(days=arg % 20)
            end = max(lease.commencement, at(day.year, day.month, day.day))
            if end < (lease.effective_end or lease.term_end):
                lease.effective_end = end
                lease.save(update_fields=["effective_end"])
                services.credit_notes_for_changes(lease=lease, now=now)
        elif action == "refund":
            cash, credit = payments.unapplied(tenant)
            if cash + credit > 0:
                payments.refund_record(
                    tenant=tenant, amount=cash + credit, reference=f"R{offset}", now=now
                )
    end = origin + dt.timedelta(days=400)
    services.billing_run(now=end - dt.timedelta(days=100))
    ledger.recognize_day(day=end.date(), now=end)

    months = sorted({d.replace(day=1) for d in Posting.objects.values_list("day", flat=True)})
    for month in months:
        close = ledger.month_close(month)
        assert close.ties, close
    bal = ledger.balances()
    assert sum(bal.values()) == 0  # debits = credits to the cent
    billed = sum(Invoice.objects.values_list("total", flat=True), Decimal(0))
    credited = sum(CreditNote.objects.values_list("total", flat=True), Decimal(0))
    # Every service period is over: all of it is recognized, nothing is deferred.
    assert bal[A.DEFERRED] == 0
    assert -bal[A.REVENUE] == billed - credited
    # AR is what the invoices still owe; customer credit what the tenant holds.
    owed = sum(payments.balances(Invoice.objects.all()).values(), Decimal(0))
    assert bal[A.AR] == owed
    cash, credit = payments.unapplied(tenant)
    assert -bal[A.CUSTOMER_CREDIT] == cash + credit
    recognized = Posting.objects.filter(kind=PostingKind.RECOGNITION)
    assert all(p.amount > 0 for p in recognized)


def test_each_schedule_is_brought_to_the_exact_half_up_share_of_its_time():
    """The day's recognition (one statement on PostgreSQL) gives every schedule exactly
    `recognized_through` — half-cent ties away from zero, negative amounts (credit notes),
    boundaries off the second — and posts the sum of the moves per document."""
    from billing.models import RevenueSchedule

    _, invoice = r2_world()
    day = dt.date(2026, 12, 3)
    cutoff = ledger.day_end(day)
    start = at(2026, 12, 1)
    cases = [
        (Decimal("0.03"), start, start + dt.timedelta(days=4)),  # 2 of 4 days: 1.5 cents
        (Decimal("-0.03"), start, start + dt.timedelta(days=4)),  # -1.5 cents
        (Decimal("0.05"), start, start + dt.timedelta(days=6)),  # 2.5 cents
        (Decimal("1000000.01"), start + dt.timedelta(microseconds=1), at(2026, 12, 31)),
        (Decimal("-7.77"), at(2026, 11, 30, 23, 59, 59, 999999), at(2026, 12, 9, 0, 0, 0, 1)),
        (Decimal("123.45"), start, at(2026, 12, 2)),  # ended before the cutoff: all of it
        (Decimal("99.99"), at(2026, 12, 5), at(2026, 12, 9)),  # not started: untouched
    ]
    rows = RevenueSchedule.objects.bulk_create(
        RevenueSchedule(
            tenant_id=invoice.tenant_id,
            invoice=invoice,
            amount=amount,
            service_start=s,
            service_end=e,
            recognized=Decimal(0),
            open=True,
        )
        for amount, s, e in cases
    )
    before = sum(
        Posting.objects.filter(invoice=invoice, kind=PostingKind.RECOGNITION).values_list(
            "amount", flat=True
        ),
        Decimal(0),
    )
    assert before == 0
    outcome = ledger.recognize_day(day=day, now=at(2026, 12, 4, 0, 40))
    wanted = {
        row.pk: ledger.recognized_through(row.amount, row.service_start, row.service_end, cutoff)
        for row in rows
    }
    assert [wanted[row.pk] for row in rows] == [
        Decimal("0.02"),
        Decimal("-0.02"),
        Decimal("0.03"),
        Decimal("100000.00"),
        Decimal("-2.91"),
        Decimal("123.45"),
        Decimal("0.00"),
    ]
    got = dict(RevenueSchedule.objects.filter(pk__in=wanted).values_list("pk", "recognized"))
    assert got == wanted
    closed = set(
        RevenueSchedule.objects.filter(pk__in=wanted, open=False).values_list("pk", flat=True)
    )
    assert closed == {rows[5].pk}
    # The invoice's own schedule (December at $100,000.00 a day) moved three days, plus the
    # cases above: one posting for the document, deferred → revenue.
    posted = Posting.objects.get(invoice=invoice, kind=PostingKind.RECOGNITION, day=day)
    assert (posted.debit, posted.credit) == (A.DEFERRED, A.REVENUE)
    assert posted.amount == Decimal("300000.00") + sum(wanted.values(), Decimal(0))
    assert outcome.amount == posted.amount
