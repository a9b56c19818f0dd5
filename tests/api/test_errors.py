"""Every documented error path answers its code; bad input is a 4xx naming the field and
writes nothing; no query parameter makes a request unbounded."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
from urllib.parse import urlencode

import pytest
from django.core.cache import cache

from clusters.models import MaintenanceWindow
from leasing import notices, services
from leasing.choices import ListingStatus, Party
from leasing.models import IdempotencyRecord, Lease, LeaseEvent, LeaseLine, Listing, Notice
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing
from webhooks.models import WebhookEndpoint

from .conftest import tomorrow


def counts() -> tuple:
    return (
        Lease.objects.count(),
        Notice.objects.count(),
        LeaseEvent.objects.count(),
        IdempotencyRecord.objects.count(),
        WebhookEndpoint.objects.count(),
    )


def request_body(listing_, **overrides):
    body = {
        "listing": listing_.pk,
        "node_count": 2,
        "commencement_date": tomorrow().isoformat(),
    }
    body.update(overrides)
    return body


def assert_field_error(response, field, status=400):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == "validation_error", body
    assert field in body["extra"]["fields"], body
    assert field in body["detail"]


# --- lease requests: strict input --------------------------------------------------------------


BAD_LEASE_REQUESTS = [
    ("node_count", -1),
    ("node_count", 0),
    ("node_count", 10**30),
    ("node_count", "٨"),
    ("node_count", "８"),
    ("node_count", True),
    ("node_count", 2.5),
    ("node_count", "1e3"),
    ("node_count", None),
    ("listing", -5),
    ("listing", 2**64),
    ("listing", "١"),
    ("commencement_date", "٢٠٢٧-٠١-٠١"),
    ("commencement_date", "2027-02-30"),
    ("commencement_date", "2027-01-01T00:00:00"),
    ("commencement_date", "9999-12-31"),
    ("commencement_date", "0001-01-01"),
    ("commencement_date", 20270101),
    ("commencement_date", "2020-01-01"),  # in the past: the service refuses it
]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), BAD_LEASE_REQUESTS)
def test_bad_lease_request_names_the_field_and_writes_nothing(field, value, api_a, listing):
    before = counts()
    response = api_a.post(
        "/api/v1/lease-requests/",
        request_body(listing, **{field: value}),
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"bad-{field}-{value!r}",
    )
    assert_field_error(response, field)
    assert counts() == before


@pytest.mark.django_db
def test_node_count_above_the_listing_is_refused(api_a, listing):
    response = api_a.post(
        "/api/v1/lease-requests/", request_body(listing, node_count=41), format="json"
    )
    assert_field_error(response, "node_count")


@pytest.mark.django_db
def test_unknown_and_missing_fields_are_named(api_a, listing):
    before = counts()
    response = api_a.post("/api/v1/lease-requests/", request_body(listing, nodes=3), format="json")
    assert_field_error(response, "nodes")
    assert response.json()["extra"]["fields"]["nodes"] == ["Unknown field."]
    response = api_a.post("/api/v1/lease-requests/", {"listing": listing.pk}, format="json")
    assert_field_error(response, "node_count")
    assert "commencement_date" in response.json()["extra"]["fields"]
    for body in ([], "x", 3, None):
        response = api_a.post("/api/v1/lease-requests/", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] == "validation_error"
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw", [b'{"listing": ', b"{'a': 1}", b"\xff\xfe", b"[1,", b'{"a": NaN', b"\x00"]
)
def test_malformed_json_is_a_400(raw, api_a, listing):
    before = counts()
    response = api_a.generic(
        "POST", "/api/v1/lease-requests/", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("malformed_request", "validation_error")
    assert counts() == before


def json_posts(world) -> list[str]:
    """Every POST of the API (each takes a JSON body), on tenant A's objects."""
    lease, notice, window = world["lease"], world["notice"], world["window"]
    line = world["line"]
    return [
        "/api/v1/lease-requests/",
        f"/api/v1/leases/{lease.pk}/notices/",
        f"/api/v1/leases/{lease.pk}/notices/{notice.pk}/confirm-withdrawal/",
        "/api/v1/webhook-endpoints/",
        f"/api/v1/maintenance-windows/{window.pk}/request-deferral/",
        "/api/v1/incidents/",
        f"/api/v1/leases/{lease.pk}/lines/{line.pk}/cancel-late-delivery/",
    ]


@pytest.mark.django_db
def test_json_posts_lists_every_post_of_the_schema(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    posts = sum("post" in operations for operations in paths.values())
    world = {
        "lease": Lease(pk=1),
        "line": LeaseLine(pk=4),
        "notice": Notice(pk=2),
        "window": MaintenanceWindow(pk=3),
    }
    assert len(json_posts(world)) == posts == 7


def post_raw(client, path, raw: str | bytes, **options):
    return client.generic("POST", path, raw, content_type="application/json", **options)


def assert_error_body(response, status, code):
    """The error format, and a body that is real UTF-8 JSON (nothing unencodable echoed)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content.decode("utf-8"))
    assert set(body) == {"detail", "code", "extra"}, body
    assert body["code"] == code, body
    return body


NESTED = [
    "[" * 1000 + "]" * 1000,
    '{"a":' * 1000 + "1" + "}" * 1000,
    '{"listing": ' + "[" * 5000 + "]" * 5000 + "}",
    "[" * 33 + "]" * 33,
]


@pytest.mark.django_db
@pytest.mark.parametrize("raw", NESTED, ids=["array", "object", "in-a-field", "just-over"])
def test_deeply_nested_json_is_a_400_on_every_json_post(raw, deployment, api_a, world_a):
    before = counts()
    for path in json_posts(world_a):
        body = assert_error_body(post_raw(api_a, path, raw, **deployment), 400, "malformed_request")
        assert body["extra"] == {"reason": "too_deep", "max_depth": 32}, (path, body)
    assert counts() == before


@pytest.mark.django_db
def test_nesting_within_the_bound_is_parsed(api_a, world_a):
    """32 levels are parsed (and refused by the serializer for their shape, not their depth);
    brackets inside strings are text."""
    raw = '{"url": "https://example.com/[[[[", "event_types": ' + "[" * 31 + "]" * 31 + "}"
    response = post_raw(api_a, "/api/v1/webhook-endpoints/", raw)
    assert_field_error(response, "event_types")
    brackets = json.dumps({"url": "https://example.com/x", "description": "[" * 100})
    assert post_raw(api_a, "/api/v1/webhook-endpoints/", brackets).status_code == 201


LONE_SURROGATES = [
    '{"\\ud800": 1}',  # an unknown field named by a lone surrogate
    '{"url": "https://example.com/x", "event_types": ["\\udfff"]}',  # an invalid choice
    '{"reason": "ok \\ud800"}',
    '{"lines": [1], "reason": ["\\ud83d"]}',
]


@pytest.mark.django_db
@pytest.mark.parametrize("raw", LONE_SURROGATES)
def test_lone_surrogates_are_a_400_on_every_json_post(raw, deployment, api_a, world_a):
    before = counts()
    for path in json_posts(world_a):
        body = assert_error_body(post_raw(api_a, path, raw, **deployment), 400, "malformed_request")
        assert body["extra"] == {"reason": "lone_surrogate"}, (path, body)
    assert counts() == before


@pytest.mark.django_db
def test_surrogate_pairs_are_text(api_a):
    raw = '{"url": "https://example.com/x", "description": "GPU \\ud83d\\ude80"}'
    response = post_raw(api_a, "/api/v1/webhook-endpoints/", raw)
    assert response.status_code == 201, response.content
    assert response.json()["description"] == "GPU \N{ROCKET}"


@pytest.mark.django_db
def test_duplicate_json_keys_are_refused_naming_the_key(api_a, listing):
    """The last one would win: a 2-node lease from a body a reader takes for 1 node."""
    before = counts()
    raw = (
        f'{{"listing": {listing.pk}, "node_count": 1, "node_count": 2, '
        f'"commencement_date": "{tomorrow().isoformat()}"}}'
    )
    response = post_raw(api_a, "/api/v1/lease-requests/", raw)
    assert_field_error(response, "node_count")
    assert response.json()["extra"]["fields"]["node_count"] == [
        "Given more than once in one JSON object."
    ]
    assert counts() == before


@pytest.mark.django_db
def test_an_oversized_body_is_a_413_in_the_error_format(deployment, api_a, world_a, settings):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    big = json.dumps({"reason": "x" * limit})
    before = counts()
    for path in [*json_posts(world_a), "/api/v1/nowhere/"]:
        response = post_raw(api_a, path, big, **deployment)
        body = assert_error_body(response, 413, "request_too_large")
        assert body["extra"] == {"max_bytes": limit}
    assert counts() == before


@pytest.mark.django_db
def test_a_body_at_the_limit_is_read(api_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    exact = json.dumps({"url": "https://example.com/x", "description": ""})
    exact = exact.replace('""', '"' + "d" * (200 - len(exact)) + '"')
    assert len(exact) == 200
    assert post_raw(api_a, "/api/v1/webhook-endpoints/", exact).status_code == 201
    response = post_raw(api_a, "/api/v1/webhook-endpoints/", exact + " ")
    assert_error_body(response, 413, "request_too_large")


@pytest.mark.django_db
@pytest.mark.parametrize("length", ["abc", "-1", "9" * 5000])
def test_a_bad_content_length_is_a_4xx(length, api_a):
    response = post_raw(api_a, "/api/v1/webhook-endpoints/", "{}", CONTENT_LENGTH=length)
    assert response.status_code in (400, 413), response.content
    assert_error_body(response, response.status_code, response.json()["code"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/leases/"),
        ("post", "/api/v1/lease-requests/"),
        ("get", "/api/v1/nowhere/"),
        ("get", "/api/schema/"),
    ],
)
def test_a_disallowed_host_is_a_400_in_the_error_format(method, path, deployment, api_a, caplog):
    with caplog.at_level("ERROR", logger="django.security.DisallowedHost"):
        response = getattr(api_a, method)(path, HTTP_HOST="evil.example", **deployment)
    assert_error_body(response, 400, "disallowed_host")
    assert "evil.example" in caplog.text  # still logged where Django logs it


@pytest.mark.django_db
def test_the_admin_keeps_djangos_own_answers(deployment, client, settings):
    """Only /api/ answers in the API's format."""
    response = client.get("/admin/login/", HTTP_HOST="evil.example", **deployment)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post("/admin/login/", {"username": big}, **deployment)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
def test_wrong_content_type_is_a_415(content_type, api_a, world_a):
    before = counts()
    for path in (
        "/api/v1/lease-requests/",
        f"/api/v1/leases/{world_a['lease'].pk}/notices/",
        "/api/v1/webhook-endpoints/",
    ):
        response = api_a.generic("POST", path, "listing=1", content_type=content_type)
        assert response.status_code == 415, (path, response.content)
        assert response.json()["code"] == "unsupported_media_type"
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/leases/1/"),
        ("patch", "/api/v1/leases/1/"),
        ("delete", "/api/v1/leases/1/"),
        ("post", "/api/v1/leases/"),
        ("post", "/api/v1/listings/"),
        ("get", "/api/v1/lease-requests/"),
        ("put", "/api/v1/invoices/1/"),
        ("post", "/api/v1/credit-notes/"),
        ("patch", "/api/v1/webhook-endpoints/1/"),
    ],
)
def test_method_not_allowed(method, path, api_a):
    response = getattr(api_a, method)(path, {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_not_found(api_a):
    for path in ("/api/v1/leases/999999/", "/api/v1/invoices/99999999999999999999999999/"):
        response = api_a.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "code": "not_found", "extra": {}}


# --- domain refusals ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ListingStatus.DRAFT, ListingStatus.WITHDRAWN])
def test_a_listing_you_cannot_get_does_not_exist_for_requests(status, api_a, listing):
    """GET says 404 for a draft or withdrawn listing; a request naming it says the same
    (it answered 409 `listing_unavailable`, telling the listing exists)."""
    Listing.objects.filter(pk=listing.pk).update(status=status)
    before = counts()
    assert api_a.get(f"/api/v1/listings/{listing.pk}/").status_code == 404
    response = api_a.post("/api/v1/lease-requests/", request_body(listing), format="json")
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Not found.", "code": "not_found", "extra": {}}
    assert counts() == before


@pytest.mark.django_db
def test_a_listing_withdrawn_while_requested_does_not_exist_either(api_a, listing, monkeypatch):
    """The race: found published by the view, withdrawn before the service reads it."""
    from leasing import services as leasing_services

    real = leasing_services.lease_request

    def withdrawn_meanwhile(**kwargs):
        Listing.objects.filter(pk=listing.pk).update(status=ListingStatus.WITHDRAWN)
        return real(**kwargs)

    monkeypatch.setattr(leasing_services, "lease_request", withdrawn_meanwhile)
    before = counts()
    response = api_a.post("/api/v1/lease-requests/", request_body(listing), format="json")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    assert counts() == before


@pytest.mark.django_db
def test_notice_not_allowed_on_a_draft(api_a, tenant_a, listing):
    lease = services.lease_request(
        tenant=tenant_a, listing=listing, node_count=1, commencement_date=tomorrow()
    )
    before = counts()
    response = api_a.post(f"/api/v1/leases/{lease.pk}/notices/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "notice_not_allowed"
    quote = api_a.get(
        f"/api/v1/leases/{lease.pk}/termination-quote/", {"notice_date": "2027-01-01"}
    )
    assert quote.status_code == 409
    assert quote.json()["code"] == "notice_not_allowed"
    assert counts() == before


@pytest.mark.django_db
def test_bad_notice_input(api_a, world_a):
    url = f"/api/v1/leases/{world_a['lease'].pk}/notices/"
    before = counts()
    cases = [
        ({"requested_end_date": "2020-01-01"}, "requested_end_date"),
        ({"requested_end_date": "2027-01-01T00:00:00Z"}, "requested_end_date"),
        ({"requested_end_date": "٢٠٢٧-٠١-٠١"}, "requested_end_date"),
        ({"lines": [999999]}, "lines"),
        ({"lines": ["x"]}, "lines"),
        ({"lines": list(range(1, 200))}, "lines"),
        ({"lines": 5}, "lines"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": 12.5}, "reason"),
        ({"reason": "a\x00b"}, "reason"),
        ({"lines": ["1"]}, "lines"),
        ({"effective_end": "2027-01-01"}, "effective_end"),
    ]
    for body, field in cases:
        assert_field_error(api_a.post(url, body, format="json"), field)
    assert counts() == before


@pytest.mark.django_db
def test_withdrawal_not_allowed_without_a_request(api_a, world_a):
    lease, notice = world_a["lease"], world_a["tenant_notice"]
    response = api_a.post(
        f"/api/v1/leases/{lease.pk}/notices/{notice.pk}/confirm-withdrawal/", {}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "withdrawal_not_allowed"


@pytest.mark.django_db
def test_capacity_unavailable_when_the_nodes_were_leased_on(api_a, tenant_a, operator):
    """The operator noticed A's lease, leased the nodes on from A's end, then asked to
    withdraw its notice: A's consent would overcommit, so it is refused and nothing changes."""
    cluster = cluster_with_nodes(3)
    listing = published_listing(cluster, earliest_start=dt.date(2026, 1, 1), notice_days=10)
    lease = services.lease_approve(
        lease=services.lease_request(
            tenant=tenant_a, listing=listing, node_count=3, commencement_date=tomorrow()
        ),
        actor=operator,
    )
    notice = notices.notice_give(lease=lease, party=Party.OPERATOR, actor=operator)
    lease.refresh_from_db()
    other = services.lease_request(
        tenant=TenantFactory(),
        listing=listing,
        node_count=3,
        commencement_date=lease.effective_end.date(),
    )
    services.lease_approve(lease=other, actor=operator)
    notices.notice_withdraw_request(notice=notice, party=Party.OPERATOR, actor=operator)
    before = counts()
    response = api_a.post(
        f"/api/v1/leases/{lease.pk}/notices/{notice.pk}/confirm-withdrawal/", {}, format="json"
    )
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "capacity_unavailable"
    assert counts() == before
    notice.refresh_from_db()
    assert notice.withdrawn_at is None


@pytest.mark.django_db
def test_throttled_with_retry_after(api_a, settings):
    settings.API_KEY_THROTTLE_RATE = "2/min"
    cache.clear()
    assert api_a.get("/api/v1/leases/").status_code == 200
    assert api_a.get("/api/v1/leases/").status_code == 200
    response = api_a.get("/api/v1/leases/")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


@pytest.mark.django_db
def test_an_unreachable_throttle_cache_lets_requests_through(api_a, caplog):
    """Throttling is not a security control: with its Redis down, tenants are still served."""
    from django.test import override_settings

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with override_settings(CACHES=down), caplog.at_level("WARNING"):
        response = api_a.get("/api/v1/leases/")
    assert response.status_code == 200, response.content
    assert "throttle: cache unavailable" in caplog.text


@pytest.mark.django_db
def test_throttle_is_per_key(api_a, api_b, settings):
    settings.API_KEY_THROTTLE_RATE = "1/min"
    cache.clear()
    assert api_a.get("/api/v1/leases/").status_code == 200
    assert api_a.get("/api/v1/leases/").status_code == 429
    assert api_b.get("/api/v1/leases/").status_code == 200


# --- query parameters --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/leases/", {"status": "nope"}, "status"),
        ("/api/v1/leases/", {"commencement_date__gte": "٢٠٢٦-٠١-٠١"}, "commencement_date__gte"),
        ("/api/v1/leases/", {"term_end__gte": "2026-01-01T00:00:00"}, "term_end__gte"),
        (
            "/api/v1/leases/",
            {"commencement_date__gte": "2027-01-01", "commencement_date__lte": "2026-01-01"},
            "commencement_date__lte",
        ),
        ("/api/v1/invoices/", {"period_start__gte": "2026-01-01T00:00:00"}, "period_start__gte"),
        (
            "/api/v1/invoices/",
            {"period_start__gte": "2026-06-01", "period_start__lt": "2026-01-01T00:00:00Z"},
            "period_start__lt",
        ),
        ("/api/v1/invoices/", {"lease": "1.5"}, "lease"),
        ("/api/v1/invoices/", {"lease": "99999999999999999999999"}, "lease"),
        ("/api/v1/invoices/", {"lease": "٣"}, "lease"),
        ("/api/v1/invoices/", {"status": "draft"}, "status"),
        ("/api/v1/credit-notes/", {"issued_at__gte": "yesterday"}, "issued_at__gte"),
        ("/api/v1/listings/", {"earliest_start__gte": "2026-13-01"}, "earliest_start__gte"),
        ("/api/v1/listings/", {"page_size": "-1"}, "page_size"),
        ("/api/v1/listings/", {"page_size": "0"}, "page_size"),
        ("/api/v1/listings/", {"page_size": "٨"}, "page_size"),
        ("/api/v1/listings/", {"cursor": "garbage"}, "cursor"),
        ("/api/v1/acceptance-records/", {"lease": "1.5"}, "lease"),
        ("/api/v1/acceptance-records/", {"node": "-3"}, "node"),
        ("/api/v1/acceptance-records/", {"node": "٣"}, "node"),
        ("/api/v1/acceptance-records/", {"ordering": "passed"}, "ordering"),
        ("/api/v1/acceptance-records/", {"cursor": "garbage"}, "cursor"),
    ],
)
def test_bad_query_parameters_name_the_parameter(path, params, field, api_a):
    assert_field_error(api_a.get(path, params), field)


IGNORED_BEFORE = [
    # ordering on an unexposed field, on garbage, on two fields
    ("/api/v1/leases/", {"ordering": "tenant"}, "ordering"),
    ("/api/v1/leases/", {"ordering": "garbage"}, "ordering"),
    ("/api/v1/leases/", {"ordering": "commencement,id"}, "ordering"),
    ("/api/v1/invoices/", {"ordering": "-total"}, "ordering"),
    ("/api/v1/webhook-endpoints/", {"ordering": "secret"}, "ordering"),
    # unknown (misspelt) filters
    ("/api/v1/leases/", {"stauts": "active"}, "stauts"),
    ("/api/v1/invoices/", {"tenant": "lab-b"}, "tenant"),
    ("/api/v1/webhook-endpoints/", {"url": "https://example.com/x"}, "url"),
    ("/api/v1/leases/{lease}/", {"status": "active"}, "status"),
    ("/api/v1/leases/{lease}/termination-quote/", {"notice_date": "2030-01-01", "x": "1"}, "x"),
    # booleans that are not true or false
    ("/api/v1/invoices/", {"is_overdue": "maybe"}, "is_overdue"),
    ("/api/v1/invoices/", {"is_overdue": "1"}, "is_overdue"),
    ("/api/v1/invoices/", {"is_overdue": "True"}, "is_overdue"),
    # a single-valued parameter given twice (the last one won)
    ("/api/v1/invoices/", {"lease": ["1", "2"]}, "lease"),
    ("/api/v1/invoices/", {"is_overdue": ["true", "false"]}, "is_overdue"),
    ("/api/v1/listings/", {"page_size": ["1", "200"]}, "page_size"),
    ("/api/v1/leases/", {"ordering": ["id", "-id"]}, "ordering"),
    (
        "/api/v1/leases/{lease}/termination-quote/",
        {"notice_date": ["2030-01-01", "2031-01-01"]},
        "notice_date",
    ),
    # empty values (no filter at all)
    ("/api/v1/invoices/", {"period_start__gte": ""}, "period_start__gte"),
    ("/api/v1/leases/", {"commencement_date__lte": ""}, "commencement_date__lte"),
    ("/api/v1/listings/", {"accelerator": ""}, "accelerator"),
    ("/api/v1/leases/", {"status": ["active", ""]}, "status"),
    ("/api/v1/listings/", {"cursor": ""}, "cursor"),
    ("/api/v1/acceptance-records/", {"hostname": "node-a01"}, "hostname"),
    ("/api/v1/acceptance-records/", {"lease": ["1", "2"]}, "lease"),
    ("/api/v1/acceptance-records/", {"node": ""}, "node"),
    ("/api/v1/leases/{lease}/nodes/", {"health": "down"}, "health"),
    ("/api/v1/leases/{lease}/nodes/", {"ordering": "hostname"}, "ordering"),
    ("/api/v1/leases/{lease}/nodes/", {"page_size": "0"}, "page_size"),
    ("/api/v1/leases/{lease}/nodes/", {"cursor": "garbage"}, "cursor"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "params", "field"), IGNORED_BEFORE)
def test_query_parameters_are_never_silently_ignored(path, params, field, api_a, world_a):
    path = path.format(lease=world_a["lease"].pk)
    assert_field_error(api_a.get(path, params), field)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "taken"),
    [
        ("2026-01-01T00:00:00Z", True),
        ("2026-01-01T00:00:00.123456789+05:30", True),
        ("2026-01-01", True),
        ("9999-12-31T23:59:59-01:00", True),  # beyond Python's UTC range: the latest instant
        ("0001-01-01T00:00:00+01:00", True),  # before it: the earliest
        ("2026-01-01t00:00:00z", False),
        ("2026-01-01 00:00:00Z", False),
        ("2026-01-01T00:00Z", False),
        ("2026-12-31T23:59:60Z", False),
    ],
)
def test_instant_filters_take_what_the_schema_says(value, taken, api_a):
    """RFC 3339 as the schema's pattern states it, and every such instant (it was a 400 for
    an instant whose UTC time Python cannot hold)."""
    response = api_a.get("/api/v1/invoices/", {"issued_at__gte": value})
    if taken:
        assert response.status_code == 200, response.content
    else:
        assert_field_error(response, "issued_at__gte")


@pytest.mark.django_db
def test_query_parameters_that_are_taken(api_a, world_a):
    """Exposed orderings, repeatable filters and booleans still work, and filter."""
    invoice = world_a["invoice"]
    overdue = api_a.get("/api/v1/invoices/", {"is_overdue": "true"})
    current = api_a.get("/api/v1/invoices/", {"is_overdue": "false"})
    assert overdue.status_code == current.status_code == 200
    assert [r["id"] for r in overdue.json()["results"]] == []
    assert invoice.pk in [r["id"] for r in current.json()["results"]]
    lease = world_a["lease"]
    lease.refresh_from_db()
    response = api_a.get("/api/v1/leases/", {"status": ["draft", lease.status]})
    assert [r["id"] for r in response.json()["results"]] == [lease.pk]
    for ordering in ("-commencement", "term_end", "id"):
        assert api_a.get("/api/v1/leases/", {"ordering": ordering}).status_code == 200
    response = api_a.get("/api/v1/listings/", {"page_size": "0" * 30 + "1"})
    assert len(response.json()["results"]) == 1
    response = api_a.get("/api/v1/listings/", {"page_size": "9" * 5000})
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("position", ["abc", "2026-01-01", "9" * 40, "-1.5e400", "%00"])
def test_forged_cursors_are_a_400(position, api_a, world_a):
    for path in ("/api/v1/leases/", "/api/v1/invoices/", "/api/v1/listings/"):
        token = base64.b64encode(urlencode({"p": position, "o": 0, "r": 0}).encode()).decode()
        response = api_a.get(path, {"cursor": token})
        assert response.status_code in (200, 400), response.content
        if response.status_code == 400:
            assert "cursor" in response.json()["extra"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"notice_date": "٢٠٢٧-٠١-٠١"},
        {},
        {"notice_date": "2027-01-01", "x": "1"},
        {"notice_date": "2027-01-01T00:00:00Z"},
        {"notice_date": "99999-01-01"},
    ],
)
def test_quote_query_is_strict(params, api_a, world_a):
    response = api_a.get(f"/api/v1/leases/{world_a['lease'].pk}/termination-quote/", params)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


@pytest.mark.django_db
def test_page_size_is_capped(api_a, cluster):
    Listing.objects.bulk_create(
        Listing(
            title=f"bulk {i}",
            cluster=cluster,
            node_count=1,
            earliest_start=dt.date(2026, 1, 1),
            monthly_rate_per_node=1,
            status=ListingStatus.PUBLISHED,
        )
        for i in range(205)
    )
    response = api_a.get("/api/v1/listings/", {"page_size": "100000000000000000000000"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 200
    assert response.json()["next"]
    rest = api_a.get(response.json()["next"])
    assert len(rest.json()["results"]) == 5


@pytest.mark.django_db
def test_idempotency_key_must_be_printable_ascii(api_a, listing):
    before = counts()
    response = api_a.post(
        "/api/v1/lease-requests/",
        request_body(listing),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k" * 256,
    )
    assert_field_error(response, "Idempotency-Key")
    assert counts() == before


@pytest.mark.django_db
def test_webhook_endpoint_input(api_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    before = counts()
    for body, field in [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://example.com/x"}, "url"),
        ({"url": "https://127.0.0.1/x"}, "url"),
        ({"url": "https://10.0.0.8/x"}, "url"),
        ({"url": "https://localhost/x"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com/x", "event_types": ["lease.exploded"]}, "event_types"),
        ({"url": "https://example.com/x", "secret": "mine"}, "secret"),
        ({"url": "https://example.com/x", "description": 0}, "description"),  # was "0"
        ({"url": "https://example.com/x", "description": ["x"]}, "description"),
        ({}, "url"),
    ]:
        assert_field_error(api_a.post("/api/v1/webhook-endpoints/", body, format="json"), field)
    assert counts() == before
    ok = api_a.post(
        "/api/v1/webhook-endpoints/",
        {"url": "https://example.com/x", "event_types": ["invoice.issued"]},
        format="json",
    )
    assert ok.status_code == 201
    assert ok.json()["secret"].startswith("whsec_")
    listed = api_a.get("/api/v1/webhook-endpoints/").json()["results"]
    assert "secret" not in listed[0]
    assert api_a.delete(f"/api/v1/webhook-endpoints/{ok.json()['id']}/").status_code == 204
    assert api_a.delete(f"/api/v1/webhook-endpoints/{ok.json()['id']}/").status_code == 404
    assert api_a.get("/api/v1/webhook-endpoints/").json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "position",
    [
        "x|1",
        "|1",
        "2026-01-01T00:00:00+00:00",  # no id
        "2026-01-01T00:00:00+00:00|abc",
        "2026-01-01T00:00:00+00:00|٣",
        "2026-01-01T00:00:00|1",  # a naive instant
        "2026-01-01T00:00:00+00:00|1|2",
        "2026-01-01T00:00:00+00:00|" + "9" * 40,
        "9" * 40 + "|1",
    ],
)
def test_forged_keyset_cursors_are_a_400(position, api_a, world_a):
    """A cursor over a field and id names both, well-formed; anything else is a bad cursor."""
    for path, ordering in (
        ("/api/v1/leases/", "commencement"),
        ("/api/v1/invoices/", "-issued_at"),
        ("/api/v1/listings/", "earliest_start"),
    ):
        token = base64.b64encode(urlencode({"p": position, "o": 0, "r": 0}).encode()).decode()
        response = api_a.get(path, {"cursor": token, "ordering": ordering})
        assert response.status_code == 400, (path, position, response.content)
        assert "cursor" in response.json()["extra"]["fields"]


@pytest.mark.django_db
def test_a_well_formed_keyset_cursor_pages_on(api_a, world_a):
    token = base64.b64encode(
        urlencode({"p": "2020-01-01T00:00:00+00:00|1", "o": 0, "r": 0}).encode()
    ).decode()
    response = api_a.get("/api/v1/leases/", {"cursor": token, "ordering": "commencement"})
    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["results"]] == [world_a["lease"].pk]


@pytest.mark.django_db
@pytest.mark.parametrize("reverse", [0, 1])
def test_a_cursor_without_a_position_is_the_first_page_even_with_no_rows(reverse, api_b):
    """Tenant B has no leases: a position-less cursor either way gives an empty page, no links."""
    token = base64.b64encode(urlencode({"o": 0, "r": reverse}).encode()).decode()
    response = api_b.get("/api/v1/leases/", {"cursor": token})
    assert response.status_code == 200, response.content
    assert response.json() == {"next": None, "previous": None, "results": []}
