"""Rent follows accepted nodes (docs/rules/fleet.md): invoices stay in advance for whole lines;
the rent of node-days before acceptance comes back as a `delivery` credit note on the next
billing run; invoiced − delivery credits = the exact accrual of accepted node-time, rounded once
per lease."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from billing import planning, proration, services
from billing.choices import CreditNoteKind
from billing.models import CreditNote, Invoice
from clusters.models import Node
from common.contract_time import ceil_local_midnight
from leasing.models import Allocation
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import ClusterFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)
D = dt.timedelta(days=1)
H = dt.timedelta(hours=1)


def lease_of(nodes, rate, *, commencement=dt.date(2026, 11, 1), tz="UTC", term_days=180):
    lease, (line,) = lease_with_lines(
        commencement_date=commencement,
        tz=tz,
        rates=(rate,),
        term_days=term_days,
        drain_grace_hours=10**6,  # holdover has its own tests
    )
    line.node_count = nodes
    line.save(update_fields=["node_count"])
    cluster = ClusterFactory()
    created = Node.objects.bulk_create(
        Node(cluster=cluster, hostname=f"d{lease.pk}-{i}") for i in range(nodes)
    )
    allocations = Allocation.objects.bulk_create(
        Allocation(
            line=line,
            node=node,
            starts_at=lease.commencement,
            ends_at=lease.term_end,
            accepted_at=lease.commencement - D,
        )
        for node in created
    )
    return lease, line, allocations


def accept(allocations, at):
    Allocation.objects.filter(pk__in=[a.pk for a in allocations]).update(accepted_at=at)


def delivery_notes(lease):
    return CreditNote.objects.filter(lease=lease, kind=CreditNoteKind.DELIVERY)


def test_the_delivery_vector_ten_late_nodes_cost_110000_back():
    lease, _, allocs = lease_of(100, Decimal("3000000.00"))
    accept(allocs[90:], dt.datetime(2026, 11, 11, 15, tzinfo=UTC))
    services.billing_run(now=NOV + H)  # November's invoice, in advance, whole line
    (november,) = Invoice.objects.filter(lease=lease)
    assert november.total == Decimal("3000000.00")
    services.billing_run(now=NOV + 19 * D)  # the next run credits the late node-days
    (note,) = delivery_notes(lease)
    assert note.total == Decimal("110000.00")
    assert note.invoice == november
    (line,) = note.lines.all()
    assert line.days == 110  # 10 nodes × 11 days
    assert "before acceptance" in line.description
    services.billing_run(now=NOV + 20 * D)
    assert delivery_notes(lease).count() == 1


def test_a_pending_node_is_credited_day_by_day_until_accepted():
    lease, _, allocs = lease_of(100, Decimal("3000000.00"))
    accept(allocs[90:], None)  # pending
    services.billing_run(now=NOV + H)
    services.billing_run(now=NOV + 4 * D + H)  # Nov 5 01:00: Nov 1–5 (5 days) surely unaccepted
    assert sum(n.total for n in delivery_notes(lease)) == Decimal("50000.00")
    accept(allocs[90:], dt.datetime(2026, 11, 11, 15, tzinfo=UTC))
    services.billing_run(now=NOV + 19 * D)
    assert sum(n.total for n in delivery_notes(lease)) == Decimal("110000.00")
    assert delivery_notes(lease).count() == 2


def test_nodes_accepted_by_commencement_cost_nothing_back():
    lease, _, allocs = lease_of(10, Decimal("1000000.00"))
    accept(allocs, NOV)  # at commencement: accrues from it
    services.billing_run(now=NOV + H)
    services.billing_run(now=NOV + 20 * D)
    assert not delivery_notes(lease).exists()


def test_a_spare_swapped_in_is_not_a_hand_over():
    from leasing.models import Replacement

    lease, line, allocs = lease_of(2, Decimal("1000000.00"))
    failed = allocs[0]
    swap = NOV + 5 * D
    Allocation.objects.filter(pk=failed.pk).update(ends_at=swap)
    cluster = ClusterFactory()
    spare = Allocation.objects.create(
        line=line,
        node=Node.objects.create(cluster=cluster, hostname="spare"),
        starts_at=swap,
        ends_at=lease.term_end,
        accepted_at=None,
    )
    Replacement.objects.create(line=line, failed_allocation=failed, spare_allocation=spare, at=swap)
    services.billing_run(now=NOV + H)
    services.billing_run(now=NOV + 20 * D)
    assert not delivery_notes(lease).exists()


# --- property ---------------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a DB case is slow
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tz=st.sampled_from(["UTC", "America/Chicago", "Asia/Kolkata"]),
    start=st.dates(min_value=dt.date(2026, 10, 20), max_value=dt.date(2027, 3, 20)),
    nodes=st.integers(min_value=1, max_value=5),
    rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2),
    acceptances=st.lists(
        st.none() | st.integers(min_value=-3 * 24, max_value=50 * 24), min_size=5, max_size=5
    ),
    runs=st.lists(st.integers(min_value=0, max_value=120 * 24), min_size=1, max_size=5),
)
def test_invoiced_minus_delivery_credits_is_accepted_accrual_rounded_once(
    tz, start, nodes, rate, acceptances, runs
):
    sid = transaction.savepoint()
    try:
        lease, _, allocs = lease_of(nodes, rate, commencement=start, tz=tz, term_days=75)
        hours = [a if a is not None else 50 * 24 for a in acceptances[:nodes]]
        for alloc, h in zip(allocs, hours, strict=False):
            accept([alloc], lease.commencement + dt.timedelta(hours=h))
        for h in sorted(runs):
            services.billing_run(now=lease.commencement + dt.timedelta(hours=h))
        services.billing_run(now=lease.term_end + 40 * D)  # every month billed
        services.billing_run(now=lease.term_end + 41 * D)  # and credited on the next run
        invoiced = sum(i.total for i in Invoice.objects.filter(lease=lease))
        credited = sum(n.total for n in delivery_notes(lease))
        share = Fraction(rate) / nodes
        exact = Fraction(0)
        for h in hours:
            accepted = lease.commencement + dt.timedelta(hours=h)
            node_start = max(lease.commencement, ceil_local_midnight(accepted, tz))
            exact += proration.cumulative(
                share,
                life_start=node_start,
                life_end=lease.term_end,
                through=lease.term_end,
                tz=tz,
            )
        docs = list(Invoice.objects.filter(lease=lease).values_list("period", "kind", "total"))
        note(f"{tz} {start} {nodes} {rate} {hours} {runs} {docs}")
        assert invoiced - credited == proration.to_money(exact)
        assert planning.node_accrual_start(lease, None, now=lease.commencement) == (
            lease.commencement
        )
    finally:
        transaction.savepoint_rollback(sid)
