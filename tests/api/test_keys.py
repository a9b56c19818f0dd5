"""API keys: created once and shown once, stored hashed, revocable, expiring, last use
recorded at most once a minute; the command and the admin."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.utils import timezone

from common.exceptions import InvalidInput, NotFound
from common.keys import hash_key
from leasing.api_keys import (
    LAST_USED_RESOLUTION,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    demo_key_for,
)
from leasing.models import ApiKey

from .conftest import client_for


@pytest.mark.django_db
def test_key_is_stored_hashed(tenant_a):
    key, raw = api_key_create(tenant=tenant_a, name="ci")
    assert raw.startswith(f"lk_{key.prefix}_")
    assert key.key_hash == hash_key(raw)
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert api_key_authenticate(raw).pk == key.pk


@pytest.mark.django_db
def test_revoked_and_expired_keys_authenticate_nothing(tenant_a):
    key, raw = api_key_create(tenant=tenant_a)
    api_key_revoke(key=key)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    api_key_revoke(key=key)
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first
    assert api_key_authenticate(raw) is None
    soon = timezone.now() + dt.timedelta(minutes=1)
    key, raw = api_key_create(tenant=tenant_a, expires_at=soon)
    assert api_key_authenticate(raw) is not None
    assert api_key_authenticate(raw, now=soon) is None
    with pytest.raises(InvalidInput):
        api_key_create(tenant=tenant_a, expires_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(tenant_a, django_assert_num_queries):
    key, raw = api_key_create(tenant=tenant_a)
    t0 = timezone.now()
    with django_assert_num_queries(2):  # lookup + stamp
        api_key_authenticate(raw, now=t0)
    with django_assert_num_queries(1):  # lookup only
        api_key_authenticate(raw, now=t0 + dt.timedelta(seconds=30))
    with django_assert_num_queries(2):
        api_key_authenticate(raw, now=t0 + LAST_USED_RESOLUTION)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == t0 + LAST_USED_RESOLUTION


@pytest.mark.django_db
def test_create_api_key_command_prints_one_line(tenant_a):
    out = io.StringIO()
    call_command("create_api_key", tenant_a.slug, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert client_for(lines[0]).get("/api/v1/leases/").status_code == 200
    with pytest.raises(CommandError):
        call_command("create_api_key", "no-such-lab", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_api_key", tenant_a.slug, "--expires-in-days", "30", stdout=out)
    assert ApiKey.objects.filter(tenant=tenant_a, expires_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_demo_key_for(tenant_a):
    raw = demo_key_for(tenant_a.slug)
    assert api_key_authenticate(raw).tenant == tenant_a
    with pytest.raises(NotFound):
        demo_key_for("nobody")


@pytest.mark.django_db
def test_admin_creates_a_key_shown_once_and_revokes(client, operator, tenant_a):
    if ApiKey not in admin.site._registry:
        # Until leasing/admin.py imports it: register, then rebuild the admin's URLs.
        import importlib

        from django.urls import clear_url_caches

        import config.urls
        import leasing.api.admin  # noqa: F401

        importlib.reload(config.urls)
        clear_url_caches()
    client.force_login(operator)
    response = client.post(
        "/admin/leasing/apikey/add/",
        {"tenant": tenant_a.pk, "name": "from admin", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    raw = next(w for m in shown for w in m.split() if w.startswith("lk_"))
    key = ApiKey.objects.get(name="from admin")
    assert key.key_hash == hash_key(raw)
    client.post(
        "/admin/leasing/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    log = client.get("/admin/webhooks/webhookdelivery/")
    assert log.status_code == 200


def refused_key(n: int) -> str:
    """A well-formed key that names no row."""
    return f"lk_{n:012x}_{'s' * 43}"


@pytest.mark.django_db
def test_refused_keys_are_throttled_per_address(tenant_a, key_a, settings, monkeypatch):
    """Three refusals a minute per address: the fourth refused key is a 429 with Retry-After
    (it was a 401 for ever); a valid key from that very address is still served; another
    address still hears 401; a minute later the address is heard again."""
    from rest_framework.throttling import SimpleRateThrottle

    now = [1_000_000.0]
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda self: now[0])
    settings.API_INVALID_KEY_THROTTLE_RATE = "3/min"
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    for n in range(3):
        response = client_for(refused_key(n)).get("/api/v1/leases/", **attacker)
        assert response.status_code == 401, response.content
    malformed = client_for(None).get("/api/v1/leases/", HTTP_AUTHORIZATION="Basic x", **attacker)
    assert malformed.status_code == 429
    response = client_for(refused_key(9)).get("/api/v1/leases/", **attacker)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    assert client_for(key_a).get("/api/v1/leases/", **attacker).status_code == 200
    elsewhere = {"REMOTE_ADDR": "198.51.100.2"}
    assert client_for(refused_key(9)).get("/api/v1/leases/", **elsewhere).status_code == 401
    now[0] += 61
    assert client_for(refused_key(9)).get("/api/v1/leases/", **attacker).status_code == 401


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_reset_the_refused_key_count(settings, monkeypatch):
    """Without a trusted proxy the counted address is the socket's: a client that writes a new
    X-Forwarded-For on every request still spends one counter."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda self: 1_000_000.0)
    settings.API_INVALID_KEY_THROTTLE_RATE = "3/min"
    codes = [
        client_for(refused_key(n))
        .get("/api/v1/leases/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        .status_code
        for n in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]


@pytest.mark.django_db
def test_requests_without_a_key_are_not_counted(settings):
    """No key at all costs nothing (no lookup) and is not a refused key: 401 every time."""
    settings.API_INVALID_KEY_THROTTLE_RATE = "1/min"
    for _ in range(3):
        assert client_for(None).get("/api/v1/leases/").status_code == 401
