"""The demo's money that follows the machines (billing/fleet_demo.py), and its operator pages."""

import datetime as dt

import pytest

from billing.choices import CreditNoteKind
from billing.demo import seed_billing
from billing.fleet_demo import seed_fleet_money
from billing.models import AvailabilityReport, CreditNote
from clusters.demo import seed_inventory
from leasing.demo import seed_leasing
from tests.factories.leasing import UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 7, 0, 30, tzinfo=dt.UTC)


def test_demo_shows_a_service_credit_with_its_report_and_a_delivery_credit(client):
    seed_inventory(scale=0.01)
    seed_leasing(now=NOW)
    seed_billing(now=NOW)
    seed_fleet_money(now=NOW)
    service = CreditNote.objects.filter(kind=CreditNoteKind.SERVICE)
    assert service.count() == 1
    note = service.get()
    assert note.period == dt.date(2026, 11, 1)
    lines = note.availability_report.report["lines"]
    assert sum(len(line["incidents"]) for line in lines) == 2
    assert sum(len(line["windows"]) for line in lines) == 1
    assert CreditNote.objects.filter(kind=CreditNoteKind.DELIVERY).count() >= 1
    counts = (CreditNote.objects.count(), AvailabilityReport.objects.count())
    seed_billing(now=NOW)
    seed_fleet_money(now=NOW)
    assert (CreditNote.objects.count(), AvailabilityReport.objects.count()) == counts

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    index = client.get("/operator/availability/")
    assert index.status_code == 200
    assert note.number.encode() in index.content
    page = client.get(f"/operator/availability/{note.availability_report.pk}/")
    assert page.status_code == 200
    assert b"BMC firmware (announced late)" in page.content
    assert b"GPU-hours a synchronous job would lose" in page.content
