"""Property: whatever the leases, notices and run schedule, billing is exact and unique.

For random leases (zones, start days, terms, one to three lines at odd rates), a random notice
(whole lease or one line, possibly inside an invoiced month or before commencement) and random
daily-run instants and chunk sizes: every lease's invoices minus credit notes equal its exact
accrual (all lines) rounded once, to the cent; no lease and month is invoiced twice; invoice totals
equal their lines; numbers have no gaps.

And through the leasing services, for random sequences of notices (whole lease or one line),
withdrawals (asked and confirmed) and billing runs at random instants: after every run, each
lease's non-void invoices minus its credit notes equal its exact accrual through the last month
invoiced, rounded once (so, at the end, its accrual to its current end): ends that move later
inside invoiced months are billed back on supplementary invoices, once per month and cause.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import proration, services
from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from common.contract_time import local_midnight
from common.exceptions import DomainError
from leasing import notices as leasing_notices
from leasing.choices import NoticeStatus, Party
from leasing.models import Notice
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db

ZONES = ["UTC", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Auckland"]
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("2000000000"), places=2)

lease_spec = st.fixed_dictionaries(
    {
        "start": st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2028, 3, 31)),
        "tz": st.sampled_from(ZONES),
        "term_days": st.integers(min_value=20, max_value=240),
        "rates": st.lists(rates, min_size=1, max_size=3),
        # Notice: (given at day offset, end = that many days later, line index or None for
        # the whole lease, whether a run happened just before it was given)
        "notice": st.none()
        | st.tuples(
            st.integers(min_value=-40, max_value=200),
            st.integers(min_value=-45, max_value=60),
            st.none() | st.integers(min_value=0, max_value=2),
            st.sampled_from([True, True, True, False]),
        ),
    }
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=st.lists(lease_spec, min_size=1, max_size=4),
    run_offsets=st.lists(st.integers(min_value=-20, max_value=300), min_size=1, max_size=6),
    chunk_size=st.integers(min_value=1, max_value=4),
)
def test_invoices_minus_credits_equal_the_exact_accrual_rounded_once(
    specs, run_offsets, chunk_size
):
    sid = transaction.savepoint()
    try:
        _check(specs, run_offsets, chunk_size)
    finally:
        transaction.savepoint_rollback(sid)


def _check(specs, run_offsets, chunk_size):
    base = min(spec["start"] for spec in specs)
    leases = []
    events = []  # (instant, kind, payload)
    for spec in specs:
        lease, lines = lease_with_lines(
            commencement_date=spec["start"],
            tz=spec["tz"],
            rates=tuple(spec["rates"]),
            term_days=spec["term_days"],
            drain_grace_hours=10**6,  # holdover has its own tests
        )
        leases.append((lease, lines))
        if spec["notice"] is not None:
            given_off, delay, which, run_before = spec["notice"]
            given_off = min(given_off, spec["term_days"] - 1)
            given_at = local_midnight(spec["start"] + dt.timedelta(days=given_off), spec["tz"])
            given_at += dt.timedelta(hours=13)
            end_day = spec["start"] + dt.timedelta(days=given_off + delay)
            end = local_midnight(end_day, spec["tz"])
            end = min(max(end, lease.commencement), lease.term_end)
            target = lines[which % len(lines)] if which is not None else lease
            events.append((given_at, "notice", (target, end)))
            if run_before:
                events.append((given_at - dt.timedelta(hours=1), "run", None))
    for offset in run_offsets:
        events.append((local_midnight(base + dt.timedelta(days=offset), "UTC"), "run", None))
    last_end = max(lease.term_end for lease, _ in leases)
    events.append((last_end + dt.timedelta(days=40), "run", None))
    events.sort(key=lambda event: (event[0], event[1] == "run"))

    for instant, kind, payload in events:
        if kind == "run":
            services.billing_run(now=instant, chunk_size=chunk_size)
        else:
            target, end = payload
            target.effective_end = end
            target.save(update_fields=["effective_end"])
            lease = target if hasattr(target, "term_end") else target.lease
            services.credit_notes_for_changes(lease=lease, now=instant)

    for lease, lines in leases:
        lease.refresh_from_db()
        exact = 0
        for line in lines:
            line.refresh_from_db()
            end = line.end
            exact += proration.cumulative(
                line.monthly_rate,
                life_start=lease.commencement,
                life_end=end,
                through=end,
                tz=lease.contract_timezone,
            )
        invoiced = sum(i.total for i in Invoice.objects.filter(lease=lease))
        credited = sum(c.total for c in CreditNote.objects.filter(lease=lease))
        assert invoiced - credited == proration.to_money(exact), lease
        # Every line's net stays within a cent per month of its own share (rounding only).
        for line in lines:
            net = sum(
                InvoiceLine.objects.filter(lease_line=line).values_list("amount", flat=True),
                Decimal(0),
            ) - sum(
                CreditNoteLine.objects.filter(lease_line=line).values_list("amount", flat=True),
                Decimal(0),
            )
            own = proration.to_money(
                proration.cumulative(
                    line.monthly_rate,
                    life_start=lease.commencement,
                    life_end=line.end,
                    through=lease.term_end,
                    tz=lease.contract_timezone,
                )
            )
            assert abs(net - own) <= Decimal("0.01") * 8
        assert all(amount > 0 for amount in CreditNoteLine.objects.values_list("amount", flat=True))

    slots = list(Invoice.objects.values_list("lease_id", "kind", "period"))
    assert len(slots) == len(set(slots))
    for invoice in Invoice.objects.prefetch_related("lines"):
        assert invoice.status == "issued"
        assert invoice.total == sum((line.amount for line in invoice.lines.all()), Decimal(0))
    for model in (Invoice, CreditNote):
        by_series = defaultdict(list)
        for number in model.objects.values_list("number", flat=True):
            prefix, year, value = number.split("-")
            by_series[(prefix, year)].append(int(value))
        for values in by_series.values():
            assert sorted(values) == list(range(1, len(values) + 1))


# --- notices, withdrawals and runs in any order, through the services -----------------------

sequence_lease = st.fixed_dictionaries(
    {
        "start": st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 12, 31)),
        "tz": st.sampled_from(ZONES),
        "term_days": st.integers(min_value=40, max_value=150),
        "notice_days": st.integers(min_value=5, max_value=30),
        "rates": st.lists(rates, min_size=1, max_size=2),
    }
)
# (what, days since the previous step, hour, a choice: which lease, line or notice, whether a
# billing run follows a few hours later). An "episode" is a notice, a run an hour later and a
# withdrawal `choice` days after: the path that moves an end later inside an invoiced month.
step = st.tuples(
    st.sampled_from(["notice", "line_notice", "withdraw", "episode", "line_episode"]),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=0, max_value=23),
    st.integers(min_value=0, max_value=7),
    st.booleans() | st.just(True),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=st.lists(sequence_lease, min_size=1, max_size=2),
    steps=st.lists(step, min_size=4, max_size=10),
)
def test_after_every_run_invoices_minus_credits_follow_notices_and_withdrawals(specs, steps):
    sid = transaction.savepoint()
    try:
        _check_sequence(specs, steps)
    finally:
        transaction.savepoint_rollback(sid)


def _check_sequence(specs, steps):
    leases = [
        lease_with_lines(
            commencement_date=spec["start"],
            tz=spec["tz"],
            rates=tuple(spec["rates"]),
            term_days=spec["term_days"],
            notice_days=spec["notice_days"],
            drain_grace_hours=10**6,  # holdover has its own tests
            with_nodes=True,
        )
        for spec in specs
    ]
    now = min(lease.commencement for lease, _ in leases) - dt.timedelta(days=10)
    for what, days, hour, choice, run_after in steps:
        now = now.replace(minute=0) + dt.timedelta(days=days, hours=hour, minutes=1)
        lease, lines = leases[choice % len(leases)]
        try:
            if what != "withdraw":
                chosen = [lines[choice % len(lines)]] if what.startswith("line_") else None
                party = (Party.TENANT, Party.OPERATOR)[choice % 2]
                notice = leasing_notices.notice_give(
                    lease=lease, party=party, lines=chosen, now=now
                )
            if what.endswith("episode"):
                services.billing_run(now=now + dt.timedelta(hours=1))
                _assert_billed_by_the_rule(leases)
                now += dt.timedelta(days=choice, hours=2)
                _withdraw_one(lease, choice, now=now, notice=notice)
            elif what == "withdraw":
                _withdraw_one(lease, choice, now=now)
        except DomainError:
            pass  # refused (the lease has ended): nothing written
        if run_after:
            services.billing_run(now=now + dt.timedelta(hours=choice + 1))
            _assert_billed_by_the_rule(leases)
    last_end = max(lease.term_end for lease, _ in leases)
    services.billing_run(now=last_end + dt.timedelta(days=35))
    _assert_billed_by_the_rule(leases, final=True)


def _withdraw_one(lease, choice, *, now, notice=None):
    """Withdraw `notice`, or one of the lease's notices still open: asked by its giver,
    confirmed by the other party."""
    open_notices = list(
        Notice.objects.filter(
            lease=lease, status=NoticeStatus.RECORDED, effective_end__gt=now
        ).order_by("pk")
    )
    if notice is not None:
        open_notices = [n for n in open_notices if n.pk == notice.pk]
    if open_notices:
        notice = open_notices[choice % len(open_notices)]
        other = Party.OPERATOR if notice.given_by == Party.TENANT else Party.TENANT
        leasing_notices.notice_withdraw_request(notice=notice, party=notice.given_by, now=now)
        leasing_notices.notice_withdraw_confirm(notice=notice, party=other, now=now)


def _assert_billed_by_the_rule(leases, *, final=False):
    for lease, lines in leases:
        lease.refresh_from_db()
        live = Invoice.objects.filter(lease=lease).exclude(status="void")
        through = max(live.values_list("period_end", flat=True), default=lease.commencement)
        exact = 0
        for line in lines:
            line.refresh_from_db()
            exact += proration.cumulative(
                line.monthly_rate,
                life_start=lease.commencement,
                life_end=line.end,
                through=line.end if final else through,
                tz=lease.contract_timezone,
            )
        invoiced = sum(live.values_list("total", flat=True), Decimal(0))
        credited = sum(
            CreditNote.objects.filter(lease=lease).values_list("total", flat=True), Decimal(0)
        )
        assert invoiced - credited == proration.to_money(exact), (lease, through)
        for supplement in live.filter(kind="supplementary").select_related("supplements"):
            original = supplement.supplements
            assert (original.lease_id, original.kind, original.period) == (
                lease.pk,
                "rent",
                supplement.period,
            )
    slots = list(
        Invoice.objects.exclude(kind="supplementary").values_list("lease_id", "kind", "period")
    )
    assert len(slots) == len(set(slots))
    causes = list(
        Invoice.objects.filter(kind="supplementary").values_list("lease_id", "period", "cause")
    )
    assert len(causes) == len(set(causes))
    assert all(amount > 0 for amount in CreditNoteLine.objects.values_list("amount", flat=True))
