"""Fixtures of the tenant API tests: two tenants with keys, and a world of tenant A's objects.

The services run on the real clock where the API does (requests carry no clock), so leases
here commence in the near future relative to `timezone.now()`.
"""

from __future__ import annotations

import datetime as dt
import runpy
import secrets

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from billing import payments
from billing import services as billing
from clusters import fleet
from leasing import acceptance, boundaries, notices, services
from leasing.api_keys import api_key_create
from leasing.choices import Party
from leasing.models import Allocation
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, UserFactory, published_listing
from webhooks import services as webhooks


@pytest.fixture(autouse=True)
def _api_settings(settings):
    # Deliveries are sent by the tests themselves (no inline HTTP from the request thread);
    # the local receivers of the webhook tests listen on 127.0.0.1.
    settings.WEBHOOK_DISPATCH_ON_EVENT = False
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.API_KEY_THROTTLE_RATE = "100000/min"
    settings.API_INVALID_KEY_THROTTLE_RATE = "100000/min"
    cache.clear()
    yield
    cache.clear()


def production_settings(monkeypatch) -> dict:
    """What `config/settings/production.py` changes from the base settings (DEBUG off, https
    only, hardened cookies and hosts), computed by running that module with a real secret and
    this test client's host allowed."""
    import config.settings.base as base

    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(64))
    monkeypatch.setenv("ALLOWED_HOSTS", "testserver")
    production = runpy.run_module("config.settings.production")
    missing = object()
    return {
        name: value
        for name, value in production.items()
        if name.isupper() and getattr(base, name, missing) != value
    }


@pytest.fixture(params=["test", "production"])
def deployment(request, settings, monkeypatch) -> dict:
    """Runs a test under the test settings, then under production's. Returns what a request
    needs under them (production redirects plain http to https)."""
    if request.param == "test":
        return {}
    for name, value in production_settings(monkeypatch).items():
        setattr(settings, name, value)
    assert settings.DEBUG is False
    assert settings.SECURE_SSL_REDIRECT is True
    return {"secure": True}


def client_for(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def tenant_a(db):
    return TenantFactory(slug="lab-a", name="Lab A")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(slug="lab-b", name="Lab B")


@pytest.fixture
def key_a(tenant_a) -> str:
    return api_key_create(tenant=tenant_a, name="a")[1]


@pytest.fixture
def key_b(tenant_b) -> str:
    return api_key_create(tenant=tenant_b, name="b")[1]


@pytest.fixture
def api_a(key_a) -> APIClient:
    return client_for(key_a)


@pytest.fixture
def api_b(key_b) -> APIClient:
    return client_for(key_b)


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


def tomorrow() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=1)


@pytest.fixture
def cluster(db):
    return cluster_with_nodes(40)


@pytest.fixture
def listing(cluster):
    return published_listing(cluster, earliest_start=dt.date(2026, 1, 1))


@pytest.fixture
def world_a(tenant_a, cluster, listing, operator):
    """Tenant A's objects, one of each kind the API shows: a private listing, a lease with a
    notice pending withdrawal, an issued invoice and credit note, a webhook endpoint."""
    private = published_listing(
        cluster,
        node_count=5,
        visibility="private",
        private_tenant=tenant_a,
        earliest_start=dt.date(2026, 1, 1),
        notice_days=10,
    )
    start = tomorrow()
    lease = services.lease_request(
        tenant=tenant_a, listing=private, node_count=5, commencement_date=start
    )
    lease = services.lease_approve(lease=lease, actor=operator)
    commenced = lease.commencement + dt.timedelta(minutes=1)
    boundaries.process_boundaries(now=commenced)
    billing.lease_bill(lease_id=lease.pk, now=commenced)
    notice = notices.notice_give(lease=lease, party=Party.OPERATOR, actor=operator)
    notices.notice_withdraw_request(notice=notice, party=Party.OPERATOR, actor=operator)
    tenant_notice = notices.notice_give(lease=lease, party=Party.TENANT)
    billing.credit_notes_for_changes(lease=lease, now=commenced + dt.timedelta(minutes=1))
    endpoint = webhooks.webhook_endpoint_create(tenant=tenant_a, url="https://example.com/hook")
    lease.refresh_from_db()
    window = fleet.window_create(
        title="Firmware on A's racks",
        scope="nodes",
        nodes=[a.node for a in Allocation.objects.filter(line__lease=lease)],
        category="firmware",
        kind="planned",
        starts_at=lease.commencement + dt.timedelta(days=2),
        ends_at=lease.commencement + dt.timedelta(days=2, hours=4),
        now=timezone.now(),
    )
    invoice = lease.invoices.get(period=lease.invoices.order_by("period").first().period)
    credit_note = lease.credit_notes.first()
    assert credit_note is not None
    line = lease.lines.first()
    accepted = acceptance.acceptance_record(
        line=line,
        node=line.allocations.order_by("id").first().node,
        tests=[{"name": "gpu_burn_in", "measured": 0}],
        signed_at=commenced,
        signed_by=operator,
        now=commenced + dt.timedelta(minutes=2),
    )
    payment = payments.payment_record(
        tenant=tenant_a,
        amount="1000.00",
        value_date=commenced.date(),
        reference="A-WIRE-SECRET",
        actor=operator,
        now=commenced + dt.timedelta(minutes=2),
    )
    return {
        "payment": payment,
        "listing": private,
        "lease": lease,
        "line": lease.lines.first(),
        "notice": notice,
        "tenant_notice": tenant_notice,
        "invoice": invoice,
        "credit_note": credit_note,
        "endpoint": endpoint,
        "acceptance_record": accepted,
        "window": window,
    }
