"""Every `/api/` response is `Cache-Control: no-store`: responses are per tenant and some carry a
secret (a new webhook endpoint's signing secret), so no shared or browser cache may keep them."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_every_api_response_is_no_store(deployment, api_a, world_a, client):
    lease = world_a["lease"]
    created = api_a.post(
        "/api/v1/webhook-endpoints/",
        {"url": "https://example.com/hook"},
        format="json",
        **deployment,
    )
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    responses = {
        "created with its secret": created,
        "list": api_a.get("/api/v1/leases/", **deployment),
        "detail": api_a.get(f"/api/v1/leases/{lease.pk}/", **deployment),
        "quote": api_a.get(
            f"/api/v1/leases/{lease.pk}/termination-quote/",
            {"notice_date": "2030-01-01"},
            **deployment,
        ),
        "invalid input": api_a.post("/api/v1/lease-requests/", {}, format="json", **deployment),
        "not found": api_a.get("/api/v1/leases/999999/", **deployment),
        "no such path": api_a.get("/api/v1/nowhere/", **deployment),
        "unauthenticated": client.get("/api/v1/leases/", **deployment),
        "schema": client.get("/api/schema/", **deployment),
        "docs": client.get("/api/docs/", **deployment),
    }
    for name, response in responses.items():
        assert response.status_code < 500, name
        assert response["Cache-Control"] == "no-store", name


@pytest.mark.django_db
def test_other_paths_are_left_alone(client):
    response = client.get("/")
    assert response.status_code == 302
    assert not response.has_header("Cache-Control")
