"""Property: whatever the leases, notices and run schedule, billing is exact and unique.

For random leases (zones, start days, terms, one to three lines at odd rates), a random notice
(whole lease or one line, possibly inside an invoiced month or before commencement) and random
daily-run instants and chunk sizes: every lease's invoices minus credit notes equal its exact
accrual (all lines) rounded once, to the cent; no lease and month is invoiced twice; invoice totals
equal their lines; numbers have no gaps.
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
