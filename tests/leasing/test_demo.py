"""Demo leasing data: the story's leases, idempotent, on the (small) demo inventory."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from clusters.demo import seed_inventory
from leasing.choices import LeaseStatus, NoticeStatus
from leasing.demo import seed_leasing
from leasing.models import Allocation, Lease, LeaseEvent, Listing, Notice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)


def snapshot():
    return (
        list(Lease.objects.order_by("pk").values_list("number", "status", "effective_end")),
        Allocation.objects.count(),
        LeaseEvent.objects.count(),
        Listing.objects.count(),
    )


def test_seed_leasing_tells_the_story_and_is_idempotent():
    seed_inventory(scale=0.01)
    calls = []
    created = seed_leasing(scale=0.01, now=NOW, progress=lambda *a: calls.append(a))
    assert created["tenants"] == 2
    assert created["leases"] == 6
    assert created["listings"] == 3
    assert created["acceptance_records"] > 0  # the phased hand-over, before its notice
    assert calls[-1][1] == calls[-1][2]

    def rent(reference):
        return Lease.objects.get(reference=reference).lines.aggregate(r=Sum("monthly_rate"))["r"]

    # Rents scale with the fleet: 1 % of the full-scale $1.25B and $0.92B a month.
    assert rent("demo:northwind-campus1-term2") == Decimal("12500000.00")
    assert rent("demo:helios-campus1") == Decimal("9200000.00")
    statuses = dict(Lease.objects.values_list("reference", "status"))
    assert statuses == {
        "demo:northwind-campus1-term1": LeaseStatus.EXPIRED,
        "demo:northwind-campus1-term2": LeaseStatus.ACTIVE,
        "demo:helios-campus1": LeaseStatus.ACTIVE,
        "demo:northwind-campus3-scheduled": LeaseStatus.SCHEDULED,
        "demo:helios-campus2-notice": LeaseStatus.NOTICE_GIVEN,
        "demo:helios-campus3-spot": LeaseStatus.ACTIVE,  # notice comes in the billing demo
    }
    assert Notice.objects.get().status == NoticeStatus.RECORDED
    term1 = Lease.objects.get(reference="demo:northwind-campus1-term1")
    assert term1.released_at == term1.term_end  # handed over to the renewal
    assert all(lease.term_days == 180 for lease in Lease.objects.all())
    notice_days = dict(Lease.objects.values_list("reference", "notice_days"))
    assert notice_days.pop("demo:helios-campus3-spot") == 5, "the spot lease: five days' notice"
    assert set(notice_days.values()) == {90}

    before = snapshot()
    again = seed_leasing(scale=0.01, now=NOW + dt.timedelta(minutes=3))
    assert again == {"tenants": 0, "leases": 0, "listings": 0, "acceptance_records": 0}
    assert snapshot() == before
