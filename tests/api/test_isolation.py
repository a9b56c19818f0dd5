"""The isolation matrix, endpoint by endpoint (a schema fuzzer does not find these leaks).

* Tenant B naming tenant A's ids gets 404 with exactly the body a nonexistent id gets (it
  learns nothing, not even that the id exists), and nothing is written.
* Tenant B's lists never contain tenant A's objects.
* No key, a malformed key, a revoked key, an expired key: 401 on every endpoint and method.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CreditNote, Invoice
from clusters import fleet
from clusters.choices import IncidentSource
from clusters.ingest import monitoring_source_create
from clusters.models import Incident, MaintenanceWindow
from leasing import services
from leasing.api.incidents import reporter_of
from leasing.api_keys import api_key_create, api_key_revoke
from leasing.models import (
    AcceptanceRecord,
    Allocation,
    ApiKey,
    IdempotencyRecord,
    Lease,
    LeaseLine,
    MaintenanceDeferral,
    Notice,
)
from webhooks.models import WebhookEndpoint

from .conftest import client_for, tomorrow

NONE = 999_999_999

# (name, method, path template, body). Placeholders are filled with tenant A's ids.
BY_ID = [
    ("listing", "get", "/api/v1/listings/{listing}/", None),
    (
        "lease-request",
        "post",
        "/api/v1/lease-requests/",
        {"listing": "{listing}", "node_count": 1, "commencement_date": "2027-03-01"},
    ),
    ("lease", "get", "/api/v1/leases/{lease}/", None),
    ("quote", "get", "/api/v1/leases/{lease}/termination-quote/?notice_date=2027-01-04", None),
    ("availability", "get", "/api/v1/leases/{lease}/availability/?month=2026-11", None),
    (
        "cancel-late-delivery",
        "post",
        "/api/v1/leases/{lease}/lines/{line}/cancel-late-delivery/",
        {},
    ),
    (
        "cancel-late-delivery-via-own-lease",
        "post",
        "/api/v1/leases/{b_lease}/lines/{line}/cancel-late-delivery/",
        {},
    ),
    ("notices", "get", "/api/v1/leases/{lease}/notices/", None),
    ("notice-give", "post", "/api/v1/leases/{lease}/notices/", {}),
    (
        "confirm-withdrawal",
        "post",
        "/api/v1/leases/{lease}/notices/{notice}/confirm-withdrawal/",
        {},
    ),
    (
        "confirm-withdrawal-via-own-lease",
        "post",
        "/api/v1/leases/{b_lease}/notices/{notice}/confirm-withdrawal/",
        {},
    ),
    ("invoice", "get", "/api/v1/invoices/{invoice}/", None),
    ("credit-note", "get", "/api/v1/credit-notes/{credit_note}/", None),
    ("payment", "get", "/api/v1/payments/{payment}/", None),
    ("webhook-endpoint", "get", "/api/v1/webhook-endpoints/{endpoint}/", None),
    ("webhook-endpoint-delete", "delete", "/api/v1/webhook-endpoints/{endpoint}/", None),
    ("acceptance-record", "get", "/api/v1/acceptance-records/{acceptance_record}/", None),
    ("lease-nodes", "get", "/api/v1/leases/{lease}/nodes/", None),
    ("incident", "get", "/api/v1/incidents/{incident}/", None),
    (
        "incident-report",
        "post",
        "/api/v1/incidents/",
        {"node": "{held_node}", "category": "gpu"},
    ),
    ("maintenance-window", "get", "/api/v1/maintenance-windows/{window}/", None),
    (
        "request-deferral",
        "post",
        "/api/v1/maintenance-windows/{window}/request-deferral/",
        {"requested_start": "2099-01-01T00:00:00Z", "reason": "a run"},
    ),
]

LISTS = [
    ("listings", "/api/v1/listings/", "listing"),
    ("leases", "/api/v1/leases/", "lease"),
    ("invoices", "/api/v1/invoices/", "invoice"),
    ("credit-notes", "/api/v1/credit-notes/", "credit_note"),
    ("payments", "/api/v1/payments/", "payment"),
    ("webhook-endpoints", "/api/v1/webhook-endpoints/", "endpoint"),
    ("acceptance-records", "/api/v1/acceptance-records/", "acceptance_record"),
    ("incidents", "/api/v1/incidents/", "incident"),
    ("maintenance-windows", "/api/v1/maintenance-windows/", "window"),
]

EVERY_OPERATION = (
    [(m, p, b) for _, m, p, b in BY_ID]
    + [("get", p, None) for _, p, _ in LISTS]
    + [
        ("post", "/api/v1/webhook-endpoints/", {"url": "https://example.com/x"}),
        ("get", "/api/v1/statement/", None),
    ]
)


def _ids(world, b_lease=None) -> dict[str, int]:
    return {
        "listing": world["listing"].pk,
        "lease": world["lease"].pk,
        "line": world["lease"].lines.order_by("pk").first().pk,
        "notice": world["notice"].pk,
        "invoice": world["invoice"].pk,
        "credit_note": world["credit_note"].pk,
        "payment": world["payment"].pk,
        "endpoint": world["endpoint"].pk,
        "acceptance_record": world["acceptance_record"].pk,
        "window": world["window"].pk,
        "b_lease": b_lease.pk if b_lease else NONE,
        "incident": world["incident"].pk,
        "held_node": world["held_node"].hostname,
    }


def _fill(value, ids):
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if filled.isdigit() and value.startswith("{") else filled
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _call(client, method, path, body):
    if method == "get":
        return client.get(path)
    if method == "delete":
        return client.delete(path)
    return client.post(path, body, format="json")


def _state() -> tuple:
    return (
        list(Lease.objects.order_by("pk").values_list("pk", "status", "effective_end")),
        list(LeaseLine.objects.order_by("pk").values_list("pk", "status", "effective_end")),
        list(Notice.objects.order_by("pk").values_list("pk", "status", "withdrawal_requested_by")),
        list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "is_active")),
        Invoice.objects.count(),
        CreditNote.objects.count(),
        IdempotencyRecord.objects.count(),
        list(AcceptanceRecord.objects.order_by("pk").values_list("pk", "passed")),
        list(Incident.objects.order_by("pk").values_list("pk", "status")),
        list(MaintenanceDeferral.objects.order_by("pk").values_list("pk", "status")),
        list(MaintenanceWindow.objects.order_by("pk").values_list("pk", "starts_at", "status")),
    )


@pytest.fixture
def world_a(world_a, tenant_a, cluster, operator):
    """The shared world, plus a node tenant A holds now with an incident A reported on it
    (the world's lease commences tomorrow: nothing of it is held yet)."""
    today = timezone.now().astimezone(dt.UTC).date()
    lease = services.lease_create(
        tenant=tenant_a,
        lines=[services.LineSpec(cluster, 1, Decimal("1000.00"))],
        commencement_date=today,
        term_days=30,
    )
    lease = services.lease_approve(lease=lease, actor=operator)
    node = Allocation.objects.get(line__lease=lease).node
    incident = fleet.incident_open(
        node=node,
        category="gpu",
        source=IncidentSource.TENANT,
        reporter=reporter_of(tenant_a),
        description="A's secret words",
        now=timezone.now(),
    )
    return world_a | {"held_node": node, "incident": incident}


@pytest.fixture
def b_lease(tenant_b, listing):
    return services.lease_request(
        tenant=tenant_b, listing=listing, node_count=1, commencement_date=tomorrow()
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "path", "body"), BY_ID, ids=[r[0] for r in BY_ID])
def test_other_tenants_ids_are_not_found_and_reveal_nothing(
    name, method, path, body, world_a, b_lease, api_b
):
    ids = _ids(world_a, b_lease)
    before = _state()
    response = _call(api_b, method, _fill(path, ids), _fill(body, ids))
    assert response.status_code == 404, response.content
    # Exactly what a nonexistent id gets: not even the existence of A's object leaks.
    nowhere = dict.fromkeys(ids, NONE) | {"b_lease": ids["b_lease"], "held_node": "no-such-node"}
    missing = _call(api_b, method, _fill(path, nowhere), _fill(body, nowhere))
    assert missing.status_code == 404
    assert (
        response.json()
        == missing.json()
        == {
            "detail": response.json()["detail"],
            "code": "not_found",
            "extra": {},
        }
    )
    text = response.content.decode()
    for secret in (
        world_a["lease"].number,
        world_a["invoice"].number,
        world_a["credit_note"].number,
        world_a["payment"].reference,
        world_a["endpoint"].url,
        world_a["listing"].title,
        world_a["held_node"].hostname,
        "A's secret words",
    ):
        assert secret not in text
    assert _state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"), [r[1:] for r in BY_ID], ids=[r[0] for r in BY_ID]
)
def test_owner_reaches_the_same_operations(method, path, body, world_a, api_a, b_lease):
    """Control: with A's key the same requests are not 404 (so the 404s above mean scoping)."""
    ids = _ids(world_a, b_lease)
    if "{b_lease}" in path:
        pytest.skip("a route through B's lease is never A's")
    response = _call(api_a, method, _fill(path, ids), _fill(body, ids))
    assert response.status_code != 404, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path", "key"), LISTS, ids=[r[0] for r in LISTS])
def test_lists_never_show_other_tenants_objects(name, path, key, world_a, api_a, api_b, b_lease):
    mine = {row["id"] for row in api_a.get(path).json()["results"]}
    assert world_a[key].pk in mine  # control: A sees it
    response = api_b.get(path)
    assert response.status_code == 200
    theirs = {row["id"] for row in response.json()["results"]}
    assert world_a[key].pk not in theirs
    assert world_a["lease"].number not in response.content.decode()


@pytest.mark.django_db
def test_private_listing_is_invisible_to_others_even_by_filter(world_a, api_b):
    response = api_b.get("/api/v1/listings/", {"site": world_a["listing"].cluster.site.slug})
    assert world_a["listing"].pk not in {r["id"] for r in response.json()["results"]}


def _bad_clients(tenant):
    """Clients whose credentials must all be refused."""
    revoked_key, revoked = api_key_create(tenant=tenant, name="revoked")
    api_key_revoke(key=revoked_key)
    expired_key, expired = api_key_create(
        tenant=tenant, name="expired", expires_at=timezone.now() + dt.timedelta(hours=1)
    )
    ApiKey.objects.filter(pk=expired_key.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    _, live = api_key_create(tenant=tenant, name="tampered")
    tampered = live[:-4] + ("AAAA" if not live.endswith("AAAA") else "BBBB")
    return {
        "none": client_for(None),
        "revoked": client_for(revoked),
        "expired": client_for(expired),
        "tampered": client_for(tampered),
        "unknown-prefix": client_for("lk_000000000000_" + "x" * 43),
        "garbage": client_for("not-a-key"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"), EVERY_OPERATION, ids=[f"{m} {p}" for m, p, _ in EVERY_OPERATION]
)
def test_every_operation_needs_a_live_key(method, path, body, world_a, b_lease, tenant_a):
    ids = _ids(world_a, b_lease)
    before = _state()
    for label, client in _bad_clients(tenant_a).items():
        response = _call(client, method, _fill(path, ids), _fill(body, ids))
        assert response.status_code == 401, (label, response.content)
        assert response["WWW-Authenticate"].startswith("Bearer")
        body_json = response.json()
        assert body_json["code"] in ("not_authenticated", "authentication_failed"), label
        assert world_a["lease"].number not in response.content.decode()
    assert _state() == before


@pytest.mark.django_db
def test_wrong_scheme_is_refused(world_a, key_a):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key_a}")
    assert client.get("/api/v1/leases/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_a} extra")
    assert client.get("/api/v1/leases/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"), EVERY_OPERATION, ids=[f"{m} {p}" for m, p, _ in EVERY_OPERATION]
)
def test_a_monitoring_source_key_opens_no_tenant_operation(method, path, body, world_a, b_lease):
    """The operator ingestion credential is not a tenant key (and vice versa: see
    tests/api/test_health_events.py)."""
    ids = _ids(world_a, b_lease)
    before = _state()
    client = client_for(monitoring_source_create(name="monitoring")[1])
    response = _call(client, method, _fill(path, ids), _fill(body, ids))
    assert response.status_code == 401, response.content
    assert _state() == before


@pytest.mark.django_db
def test_tenant_keys_open_nothing_of_the_ingestion_api(world_a, key_a, key_b):
    before = _state()
    body = {
        "events": [
            {
                "event_id": "x",
                "node": world_a["held_node"].hostname,
                "observed_at": "2026-01-01T00:00:00Z",
                "severity": "ok",
            }
        ]
    }
    for key in (key_a, key_b):
        response = client_for(key).post("/api/ops/v1/health-events/", body, format="json")
        assert response.status_code == 401
    assert _state() == before


def test_the_statement_is_the_callers_own(world_a, api_a, api_b, b_lease):
    as_of = {"as_of": world_a["payment"].recorded_at.date().isoformat()}
    mine = api_a.get("/api/v1/statement/", as_of).json()
    assert "A-WIRE-SECRET" in {d["reference"] for d in mine["documents"]}
    theirs = api_b.get("/api/v1/statement/", as_of)
    assert theirs.status_code == 200
    text = theirs.content.decode()
    for secret in ("A-WIRE-SECRET", world_a["invoice"].number, world_a["credit_note"].number):
        assert secret not in text
    assert theirs.json()["documents"] == []
