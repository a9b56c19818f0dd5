"""The OpenAPI document validates and describes every path, and says exactly what the API
takes: a schema-driven fuzzer sends schema-valid requests (which must be accepted) and
schema-invalid ones (which must be refused with a 4xx), and finds no 5xx and no response that
breaks the schema (authenticated with a valid key of a seeded tenant).

The fuzzer runs in CI with the whole suite: over 2,000 cases, about two minutes on two
cores. It cannot judge authorization (a planted cross-tenant leak passes it): that is the
isolation matrix's job (test_isolation.py).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application

EXPECTED_PATHS = {
    "/api/v1/listings/": {"get"},
    "/api/v1/listings/{id}/": {"get"},
    "/api/v1/lease-requests/": {"post"},
    "/api/v1/leases/": {"get"},
    "/api/v1/leases/{id}/": {"get"},
    "/api/v1/leases/{id}/termination-quote/": {"get"},
    "/api/v1/leases/{id}/availability/": {"get"},
    "/api/v1/leases/{id}/lines/{line_id}/cancel-late-delivery/": {"post"},
    "/api/v1/leases/{lease_id}/notices/": {"get", "post"},
    "/api/v1/leases/{lease_id}/notices/{id}/confirm-withdrawal/": {"post"},
    "/api/v1/invoices/": {"get"},
    "/api/v1/invoices/{id}/": {"get"},
    "/api/v1/credit-notes/": {"get"},
    "/api/v1/credit-notes/{id}/": {"get"},
    "/api/v1/payments/": {"get"},
    "/api/v1/payments/{id}/": {"get"},
    "/api/v1/statement/": {"get"},
    "/api/v1/webhook-endpoints/": {"get", "post"},
    "/api/v1/webhook-endpoints/{id}/": {"get", "delete"},
    "/api/v1/acceptance-records/": {"get"},
    "/api/v1/acceptance-records/{id}/": {"get"},
    "/api/v1/leases/{lease_id}/nodes/": {"get"},
    "/api/v1/incidents/": {"get", "post"},
    "/api/v1/incidents/{id}/": {"get"},
    "/api/v1/maintenance-windows/": {"get"},
    "/api/v1/maintenance-windows/{id}/": {"get"},
    "/api/v1/maintenance-windows/{id}/request-deferral/": {"post"},
}
OPERATIONS = sum(len(methods) for methods in EXPECTED_PATHS.values())

# Schema-valid requests the API may still refuse with a 400, because the rule depends on the
# clock or on stored rows, which a schema cannot state. A schema-valid request answered 400
# passes only if every field the answer names is listed here for its operation; any other
# 400 means the schema and the code disagree, and fails the run.
STATE_DEPENDENT_FIELDS = {
    # not in the past, not before the listing's earliest start; at most the listing's nodes
    "POST /api/v1/lease-requests/": {"commencement_date", "node_count"},
    # not before today; lines of this very lease
    "POST /api/v1/leases/{lease_id}/notices/": {"requested_end_date", "lines"},
    # where the URL points (leasing.webhooks.check_url: a public receiver)
    "POST /api/v1/webhook-endpoints/": {"url"},
    # bytes and depth once encoded (the schema says so in words only)
    "POST /api/v1/incidents/": {"evidence"},
    # later than the window's current start
    "POST /api/v1/maintenance-windows/{id}/request-deferral/": {"requested_start"},
}
# On any list: a cursor is a token the server issued (the schema can only say "a string"),
# and a range's upper bound may not be before its lower bound.
LIST_FIELDS = {
    "cursor",
    "commencement_date__lte",
    "term_end__lt",
    "earliest_start__lte",
    "period_start__lt",
    "issued_at__lt",
    "opened_at__lt",
    "starts_at__lt",
    "ends_at__lt",
}


def _refused_fields(response) -> set[str]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return set()
    return set(body.get("extra", {}).get("fields", {})) if isinstance(body, dict) else set()


def _code(response) -> str | None:
    try:
        return json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return None


def schema_valid_data_accepted(ctx, response, case):
    """schemathesis's positive-data check, less the refusals a schema cannot foresee: the
    fields of `STATE_DEPENDENT_FIELDS` and `LIST_FIELDS`, and an Idempotency-Key the fuzzer
    already used with another body (422 `idempotency_key_reused`, as documented)."""
    if case.meta is not None and case.meta.generation.mode.is_positive:
        if response.status_code == 422 and _code(response) == "idempotency_key_reused":
            return None
        if response.status_code == 400:
            fields = _refused_fields(response)
            allowed = STATE_DEPENDENT_FIELDS.get(case.operation.label, set())
            if case.operation.method.upper() == "GET":
                allowed = allowed | LIST_FIELDS
            if fields and fields <= allowed:
                return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    schema_valid_data_accepted,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 70  # plus the coverage phase's cases: ~2,200 cases in ~2 minutes
CASES: Counter[tuple[str, str]] = Counter()  # (operation, mode) → cases run


def test_openapi_document_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(out),
    )
    assert "/api/v1/leases/{id}/termination-quote/" in out.read_text()


def test_schema_describes_every_path_body_and_error(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    doc = response.json()
    paths = {
        p: {m for m in ops if m in ("get", "post", "delete")} for p, ops in doc["paths"].items()
    }
    assert paths == EXPECTED_PATHS
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "delete"):
                continue
            codes = set(op["responses"])
            assert {"401", "429"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if method == "post":
                assert "requestBody" in op, (method, path)
                assert {"400", "413", "415"} <= codes, (method, path)
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                body = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert body["additionalProperties"] is False, (path, body)  # refused: 400
            for code, body in op["responses"].items():
                if code.startswith(("4", "5")):
                    ref = body["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/Error"), (method, path, code)
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in html
    assert "cdn." not in html
    assert "unpkg" not in html


# Loaded at collection: generating the document touches no database. Schema-valid and
# schema-invalid data; the Authorization header is the seeded tenant's key (keys and their
# refusals have their own tests), so the fuzzer does not generate it.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], with_security_parameters=False
)


@pytest.fixture
def keep_test_connection():
    """As Django's test client does: the real WSGI handler would close the test's database
    connection at the end of each request (it sees a transaction left open: the test's)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
@pytest.mark.django_db
def test_fuzz_the_api(case, key_a, world_a, keep_test_connection):
    mode = case.meta.generation.mode.value if case.meta is not None else "explicit"
    CASES[case.operation.label, mode] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {key_a}"}, checks=CHECKS)


def test_the_fuzzer_ran_thousands_of_valid_and_invalid_cases():
    """Runs after the fuzz test in the same process (skipped when the fuzz test did not run
    here, e.g. deselected or on another xdist worker)."""
    if not CASES:
        pytest.skip("the fuzz test did not run in this process")
    by_mode = Counter()
    for (_, mode), count in CASES.items():
        by_mode[mode] += count
    total = sum(by_mode.values())
    print(f"fuzzer cases: {total} ({', '.join(f'{n} {m}' for m, n in sorted(by_mode.items()))})")
    assert total >= 2_000, by_mode
    assert by_mode["positive"] >= 500, by_mode
    assert by_mode["negative"] >= 500, by_mode
    assert len({operation for operation, _ in CASES}) == OPERATIONS
