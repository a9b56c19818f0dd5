"""`GET /api/v1/leases/{id}/availability/` and credit notes with their kind and report."""

import datetime as dt
from decimal import Decimal

import pytest

from billing import service_credits, services
from clusters import fleet
from leasing.models import Allocation
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db

NOV = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
D = dt.timedelta(days=1)


@pytest.fixture
def served(tenant_a):
    """Tenant A's lease of 10 accepted nodes; one down for a day in November; settled."""
    lease, (line,) = lease_with_lines(
        tenant=tenant_a,
        commencement_date=dt.date(2026, 10, 1),
        rates=(Decimal("100000000.00"),),
        term_days=365,
        with_nodes=True,
    )
    services.billing_run(now=NOV - 7 * D)
    node = Allocation.objects.filter(line=line).first().node
    incident = fleet.incident_open(node=node, category="gpu", source="operator", now=NOV + D)
    fleet.incident_resolve(incident=incident, now=NOV + 2 * D)
    service_credits.service_credit_run(now=NOV + 31 * D)
    return lease, line


def test_a_settled_month_is_final_with_its_credit_note(api_a, served):
    lease, line = served
    response = api_a.get(f"/api/v1/leases/{lease.pk}/availability/", {"month": "2026-11"})
    assert response.status_code == 200
    body = response.json()
    assert body["final"] is True
    assert body["month"] == "2026-11"
    (row,) = body["lines"]
    assert row["line"] == line.pk
    assert row["in_service_minutes"] == "432000"
    assert row["downtime_minutes"] == "1440"
    assert row["availability"] == "99.6667"
    assert row["credit"] == "333333.33"
    note = api_a.get(f"/api/v1/credit-notes/{body['credit_note']}/").json()
    assert note["kind"] == "service"
    assert note["period"] == "2026-11-01"
    assert note["total"] == "333333.33"
    assert note["availability"]["lines"][0]["downtime_minutes"] == "1440"


def test_month_to_date_is_not_final(api_a, served):
    lease, _ = served
    # A month that never closes in this test (the clock is the real one).
    response = api_a.get(f"/api/v1/leases/{lease.pk}/availability/", {"month": "2027-06"})
    assert response.status_code == 200
    assert response.json()["final"] is False


def test_other_credit_notes_carry_their_kind(api_a, served):
    body = api_a.get("/api/v1/credit-notes/").json()
    assert {row["kind"] for row in body["results"]} == {"service"}


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-1", "26-11", "november", "2026-11-01", "1999-01"]
)
def test_a_malformed_month_is_400_naming_the_field(api_a, served, month):
    lease, _ = served
    response = api_a.get(f"/api/v1/leases/{lease.pk}/availability/", {"month": month})
    assert response.status_code == 400
    assert "month" in str(response.json())


def test_unknown_parameter_and_other_tenants_lease(api_a, api_b, served):
    lease, _ = served
    url = f"/api/v1/leases/{lease.pk}/availability/"
    assert api_a.get(url, {"months": "2026-11"}).status_code == 400
    assert api_b.get(url, {"month": "2026-11"}).status_code == 404
