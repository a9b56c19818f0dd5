"""Maintenance windows in the tenant API: what a tenant sees and its deferral requests
(leasing/api/maintenance.py). Isolation rows are in test_isolation.py."""

from __future__ import annotations

import datetime as dt

import pytest

from clusters import fleet
from leasing import maintenance
from leasing.models import Allocation, IdempotencyRecord, MaintenanceDeferral

pytestmark = pytest.mark.django_db

PATH = "/api/v1/maintenance-windows/"


def _nodes(lease):
    return [a.node for a in Allocation.objects.filter(line__lease=lease).select_related("node")]


@pytest.fixture
def windows(world_a, cluster):
    """A's window (world_a), a window on the whole cluster (A holds 5 of its nodes), one on
    free nodes only, and a cancelled one on A's nodes."""
    lease = world_a["lease"]
    start = lease.commencement + dt.timedelta(days=3)
    now = dt.datetime.now(tz=dt.UTC)
    whole = fleet.window_create(
        title="Cluster power work",
        scope="cluster",
        cluster=cluster,
        category="power",
        kind="emergency",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        now=now,
    )
    held = {n.pk for n in _nodes(lease)}
    free = fleet.window_create(
        title="Free racks",
        scope="nodes",
        nodes=cluster.nodes.exclude(pk__in=held)[:2],
        category="hardware",
        kind="planned",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        now=now,
    )
    cancelled = fleet.window_create(
        title="Called off",
        scope="nodes",
        nodes=_nodes(lease)[:2],
        category="network",
        kind="planned",
        starts_at=start + dt.timedelta(days=1),
        ends_at=start + dt.timedelta(days=1, hours=1),
        now=now,
    )
    fleet.window_cancel(window=cancelled, now=now)
    return {"mine": world_a["window"], "whole": whole, "free": free, "cancelled": cancelled}


def test_a_tenant_sees_the_windows_touching_its_nodes(windows, api_a, api_b):
    rows = {r["id"]: r for r in api_a.get(PATH).json()["results"]}
    assert set(rows) == {windows["mine"].pk, windows["whole"].pk, windows["cancelled"].pk}
    whole = rows[windows["whole"].pk]
    assert whole["affected_nodes"] == 5
    assert whole["scope"] == "cluster"
    assert whole["scope_name"].endswith(windows["whole"].cluster.name)
    assert whole["kind"] == "emergency"
    assert whole["counts_as_planned"] is False
    assert whole["deferral"] is None
    assert whole["starts_at"].endswith("Z")
    assert rows[windows["cancelled"].pk]["affected_nodes"] == 2
    assert api_b.get(PATH).json()["results"] == []
    # Filters: status (repeatable), kind, date ranges.
    scheduled = api_a.get(PATH, {"status": "scheduled"}).json()["results"]
    assert {r["id"] for r in scheduled} == {windows["mine"].pk, windows["whole"].pk}
    both = api_a.get(f"{PATH}?status=scheduled&status=cancelled").json()["results"]
    assert len(both) == 3
    emergency = api_a.get(PATH, {"kind": "emergency"}).json()["results"]
    assert [r["id"] for r in emergency] == [windows["whole"].pk]
    later = windows["cancelled"].starts_at.isoformat().replace("+00:00", "Z")
    assert [r["id"] for r in api_a.get(PATH, {"starts_at__gte": later}).json()["results"]] == [
        windows["cancelled"].pk
    ]
    ordered = api_a.get(PATH, {"ordering": "starts_at"}).json()["results"]
    assert ordered[0]["id"] == windows["mine"].pk
    detail = api_a.get(f"{PATH}{windows['whole'].pk}/")
    assert detail.status_code == 200
    assert detail.json() == whole
    assert api_a.get(f"{PATH}{windows['free'].pk}/").status_code == 404


def test_a_deferral_request_shows_on_the_window_and_replays_by_key(windows, api_a, tenant_a):
    window = windows["whole"]
    asked = (window.starts_at + dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")
    body = {"requested_start": asked, "reason": "checkpoint due"}
    headers = {"HTTP_IDEMPOTENCY_KEY": "defer-1"}
    first = api_a.post(f"{PATH}{window.pk}/request-deferral/", body, format="json", **headers)
    assert first.status_code == 201, first.content
    assert first.json()["deferral"]["status"] == "requested"
    assert first.json()["deferral"]["requested_start"] == asked
    again = api_a.post(f"{PATH}{window.pk}/request-deferral/", body, format="json", **headers)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert MaintenanceDeferral.objects.filter(tenant=tenant_a).count() == 1
    # Without the key a second open request is refused.
    second = api_a.post(f"{PATH}{window.pk}/request-deferral/", body, format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "deferral_already_requested"
    # Decided, the state shows on the window.
    maintenance.deferral_deny(
        deferral=MaintenanceDeferral.objects.get(tenant=tenant_a), actor=None, note="no"
    )
    row = api_a.get(f"{PATH}{window.pk}/").json()
    assert row["deferral"]["status"] == "denied"
    assert row["deferral"]["decision_note"] == "no"


def _bad(windows):
    whole = windows["whole"]
    later = (whole.starts_at + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    return [
        # (label, window key, body, status, code, field)
        (
            "naive",
            "whole",
            {"requested_start": "2099-01-01T00:00:00"},
            400,
            None,
            "requested_start",
        ),
        ("not a date", "whole", {"requested_start": "soon"}, 400, None, "requested_start"),
        ("missing", "whole", {"reason": "x"}, 400, None, "requested_start"),
        ("number", "whole", {"requested_start": 1767225600}, 400, None, "requested_start"),
        (
            "same start",
            "whole",
            {"requested_start": whole.starts_at.isoformat().replace("+00:00", "Z")},
            400,
            None,
            "requested_start",
        ),
        (
            "earlier",
            "whole",
            {"requested_start": "2000-01-01T00:00:00Z"},
            400,
            None,
            "requested_start",
        ),
        ("unknown field", "whole", {"requested_start": later, "node": 1}, 400, None, "node"),
        (
            "reason too long",
            "whole",
            {"requested_start": later, "reason": "x" * 1001},
            400,
            None,
            "reason",
        ),
        (
            "cancelled window",
            "cancelled",
            {"requested_start": "2099-01-01T00:00:00Z"},
            409,
            "deferral_not_allowed",
            None,
        ),
        (
            "window not touching me",
            "free",
            {"requested_start": "2099-01-01T00:00:00Z"},
            404,
            "not_found",
            None,
        ),
    ]


def test_bad_deferral_requests_are_refused_naming_the_field_and_write_nothing(windows, api_a):
    for label, key, body, status, code, field in _bad(windows):
        window = windows[key]
        before = (MaintenanceDeferral.objects.count(), IdempotencyRecord.objects.count())
        starts = window.starts_at
        response = api_a.post(f"{PATH}{window.pk}/request-deferral/", body, format="json")
        assert response.status_code == status, (label, response.content)
        payload = response.json()
        if code:
            assert payload["code"] == code, label
        else:
            assert payload["code"] == "validation_error", label
        if field:
            fields = payload["extra"].get("fields") or {payload["extra"].get("field"): []}
            assert field in fields, (label, payload)
        assert (MaintenanceDeferral.objects.count(), IdempotencyRecord.objects.count()) == before
        window.refresh_from_db()
        assert window.starts_at == starts, label
    unknown = api_a.post(f"{PATH}999999999/request-deferral/", {}, format="json")
    assert unknown.status_code == 404


def test_strict_query_strings(windows, api_a):
    for query in (
        "status=someday",
        "kind=planned&kind=emergency",
        "starts_at__gte=2026-01-01T00:00:00",
        "tenant=lab-b",
        "status=",
    ):
        response = api_a.get(f"{PATH}?{query}")
        assert response.status_code == 400, (query, response.content)
        assert response.json()["code"] == "validation_error"
