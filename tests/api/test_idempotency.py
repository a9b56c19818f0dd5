"""Idempotency-Key on the POSTs that create leases and notices."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from leasing import services
from leasing.api.idempotency import purge_expired
from leasing.choices import ListingVisibility
from leasing.models import IdempotencyRecord, Lease, Listing, Notice

from .conftest import client_for, tomorrow


def lease_request(listing, nodes=2):
    return {"listing": listing.pk, "node_count": nodes, "commencement_date": tomorrow().isoformat()}


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_response(api_a, listing):
    first = api_a.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert first.status_code == 201
    # Key order in the body does not matter: the canonical JSON is compared.
    body = dict(reversed(list(lease_request(listing).items())))
    again = api_a.post("/api/v1/lease-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Lease.objects.count() == 1


@pytest.mark.django_db
def test_same_key_other_body_is_refused(api_a, listing, world_a):
    api_a.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    leases, notices = Lease.objects.count(), Notice.objects.count()
    other = api_a.post(
        "/api/v1/lease-requests/",
        lease_request(listing, nodes=3),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    # The same key on another path is another request too.
    elsewhere = api_a.post(
        f"/api/v1/leases/{world_a['lease'].pk}/notices/",
        {},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert elsewhere.status_code == 422
    assert (Lease.objects.count(), Notice.objects.count()) == (leases, notices)


@pytest.mark.django_db
def test_keys_are_per_tenant(api_a, api_b, listing):
    a = api_a.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="s"
    )
    b = api_b.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="s"
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_a_refusal_is_replayed_too(api_a, tenant_a, listing, operator):
    """Notice on a draft lease: 409. Once the lease is signed the same key still answers the
    first refusal (a new key would give notice)."""
    lease = services.lease_request(
        tenant=tenant_a, listing=listing, node_count=1, commencement_date=tomorrow()
    )
    url = f"/api/v1/leases/{lease.pk}/notices/"
    first = api_a.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert first.status_code == 409
    assert first.json()["code"] == "notice_not_allowed"
    services.lease_approve(lease=lease, actor=operator)
    again = api_a.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert (again.status_code, again.json()) == (409, first.json())
    assert Notice.objects.count() == 0


@pytest.mark.django_db
def test_a_404_for_the_listing_named_is_replayed(api_a, listing, tenant_b):
    """As the module says: the first answer for the key (here: no such listing for you) is the
    answer for that key, even once the listing becomes visible."""
    Listing.objects.filter(pk=listing.pk).update(
        visibility=ListingVisibility.PRIVATE, private_tenant=tenant_b
    )
    first = api_a.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="n"
    )
    assert first.status_code == 404
    Listing.objects.filter(pk=listing.pk).update(
        visibility=ListingVisibility.PUBLIC, private_tenant=None
    )
    again = api_a.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="n"
    )
    assert (again.status_code, again.json()) == (404, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert Lease.objects.count() == 0


@pytest.mark.django_db
def test_a_404_for_the_url_stores_nothing(api_a, world_a):
    """Refused before the key is looked at: the URL names no lease of this tenant."""
    response = api_a.post(
        "/api/v1/leases/999999/notices/", {}, format="json", HTTP_IDEMPOTENCY_KEY="u"
    )
    assert response.status_code == 404
    assert not IdempotencyRecord.objects.filter(key="u").exists()


@pytest.mark.django_db
def test_invalid_input_is_not_remembered(api_a, listing):
    bad = api_a.post(
        "/api/v1/lease-requests/",
        lease_request(listing, nodes=0),
        format="json",
        HTTP_IDEMPOTENCY_KEY="fix-me",
    )
    assert bad.status_code == 400
    fixed = api_a.post(
        "/api/v1/lease-requests/",
        lease_request(listing),
        format="json",
        HTTP_IDEMPOTENCY_KEY="fix-me",
    )
    assert fixed.status_code == 201


@pytest.mark.django_db
def test_notice_post_is_idempotent(api_a, world_a):
    url = f"/api/v1/leases/{world_a['lease'].pk}/notices/"
    before = Notice.objects.count()
    first = api_a.post(url, {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="n1")
    again = api_a.post(url, {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="n1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Notice.objects.count() == before + 1


@pytest.mark.django_db
def test_records_are_kept_24_hours(api_a, listing):
    api_a.post(
        "/api/v1/lease-requests/", lease_request(listing), format="json", HTTP_IDEMPOTENCY_KEY="t"
    )
    assert purge_expired(now=timezone.now() + dt.timedelta(hours=23)) == 0
    assert purge_expired(now=timezone.now() + dt.timedelta(hours=25)) == 1
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_execute_once(key_a, listing):
    """Eight clients race with one key: one lease, and every answer is that lease (or 409)."""
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(8)

    def worker():
        try:
            client = client_for(key_a)
            barrier.wait()
            response = client.post(
                "/api/v1/lease-requests/",
                lease_request(listing),
                format="json",
                HTTP_IDEMPOTENCY_KEY="race",
            )
            results.append((response.status_code, response.json()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert connection.vendor == "postgresql"
    assert Lease.objects.count() == 1
    created = [body for code, body in results if code == 201]
    assert created
    assert all(body["id"] == created[0]["id"] for body in created)
    assert all(code in (201, 409) for code, _ in results), results
    assert all(body["code"] == "idempotency_in_progress" for code, body in results if code == 409)
