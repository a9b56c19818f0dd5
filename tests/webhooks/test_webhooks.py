"""Webhooks: signed deliveries to a local receiver, retries with backoff, no duplicates."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import ssl
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services as billing
from common import events
from common.exceptions import InvalidInput
from common.models import DomainEvent, EventDelivery
from leasing import services
from leasing.events import EventKind
from tests.api.conftest import tomorrow
from webhooks import services as webhooks
from webhooks.choices import WebhookDeliveryStatus
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.tasks import deliver_due_webhooks


class Receiver:
    """An HTTP receiver on 127.0.0.1 answering a scripted sequence of statuses."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = (
                    receiver.statuses.pop(0)
                    if len(receiver.statuses) > 1
                    else (receiver.statuses[0])
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def approved(tenant_a, listing, operator, receiver, django_capture_on_commit_callbacks):
    """An endpoint for tenant A, then a lease approval: one `lease.approved` delivery."""
    endpoint = webhooks.webhook_endpoint_create(tenant=tenant_a, url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        lease = services.lease_request(
            tenant=tenant_a, listing=listing, node_count=2, commencement_date=tomorrow()
        )
        services.lease_approve(lease=lease, actor=operator)
    return endpoint, lease


@pytest.mark.django_db
def test_signed_delivery_verifies_with_the_secret(approved, receiver):
    endpoint, lease = approved
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event_type == "lease.approved"
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == WebhookDeliveryStatus.SUCCEEDED
    headers, body = receiver.requests[0]
    assert headers["webhook-id"] == delivery.event_id
    assert webhooks.verify(endpoint.secret, headers, body)
    assert not webhooks.verify(endpoint.secret, headers, body + b" ")
    assert not webhooks.verify(webhooks.new_secret(), headers, body)
    stale = timezone.now() + dt.timedelta(minutes=10)
    assert not webhooks.verify(endpoint.secret, headers, body, now=stale)
    payload = json.loads(body)
    assert payload["type"] == "lease.approved"
    assert payload["id"] == delivery.event_id
    assert payload["data"]["lease"] == {
        "id": lease.pk,
        "number": lease.number,
        "status": "scheduled",
    }
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.last_status_code == 200
    assert delivery.delivered_at is not None
    # Done is done: another attempt sends nothing.
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


def test_signature_matches_the_standard_webhooks_example():
    """The published test vector of the Standard Webhooks specification."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.django_db
def test_retries_with_backoff_then_success(approved, receiver):
    endpoint, _ = approved
    receiver.statuses = [500, 503, 200]
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    t0 = timezone.now()
    assert webhooks.delivery_attempt(delivery_id=delivery.pk, now=t0) == "pending"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == t0 + webhooks.backoff(1) == t0 + dt.timedelta(seconds=30)
    assert delivery.last_status_code == 500
    # Not due yet: nothing is sent.
    assert (
        webhooks.delivery_attempt(delivery_id=delivery.pk, now=t0 + dt.timedelta(seconds=29))
        is None
    )
    t1 = t0 + dt.timedelta(seconds=30)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk, now=t1) == "pending"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == t1 + dt.timedelta(seconds=60)
    assert webhooks.due_delivery_ids(now=t1 + dt.timedelta(seconds=59)) == []
    assert webhooks.due_delivery_ids(now=t1 + dt.timedelta(seconds=60)) == [delivery.pk]
    t2 = t1 + dt.timedelta(seconds=60)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk, now=t2) == "succeeded"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.status, delivery.last_status_code) == (3, "succeeded", 200)
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert ids == {delivery.event_id}  # the same id on every retry: receivers dedupe on it


@pytest.mark.django_db
def test_gives_up_after_max_attempts(approved, receiver):
    endpoint, _ = approved
    receiver.statuses = [500]
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    now = timezone.now()
    for _ in range(webhooks.MAX_ATTEMPTS):
        webhooks.delivery_attempt(delivery_id=delivery.pk, now=now)
        now += webhooks.BACKOFF_CAP
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED
    assert delivery.attempts == webhooks.MAX_ATTEMPTS
    assert webhooks.backoff(30) == webhooks.BACKOFF_CAP
    webhooks.webhook_delivery_retry(delivery=delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


@pytest.mark.django_db
def test_a_replayed_or_duplicated_event_is_not_queued_twice(approved):
    endpoint, lease = approved
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    event = DomainEvent.objects.get(kind=EventKind.LEASE_APPROVED, subject_id=lease.pk)
    consumed = event.deliveries.get(consumer="webhooks.announce")
    assert consumed.status == "done"
    assert events.deliver(consumed.pk) is None  # a replayed dispatch runs nothing
    # The consumer run again on the event, and on a copy of it (emitted twice): the delivery
    # is still pending, reported again, not inserted again.
    assert webhooks.announce(event) == [delivery.pk]
    copy = DomainEvent.objects.create(
        kind=event.kind,
        subject=event.subject,
        subject_id=event.subject_id,
        payload=event.payload,
        occurred_at=event.occurred_at,
    )
    assert webhooks.announce(copy) == [delivery.pk]
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


@pytest.mark.django_db
def test_unsubscribed_and_other_tenants_endpoints_get_nothing(
    tenant_a, tenant_b, listing, operator, receiver, django_capture_on_commit_callbacks
):
    only_invoices = webhooks.webhook_endpoint_create(
        tenant=tenant_a, url=receiver.url, event_types=["invoice.issued"]
    )
    other = webhooks.webhook_endpoint_create(tenant=tenant_b, url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        lease = services.lease_request(
            tenant=tenant_a, listing=listing, node_count=2, commencement_date=tomorrow()
        )
        services.lease_approve(lease=lease, actor=operator)
    assert not WebhookDelivery.objects.filter(endpoint__in=[only_invoices, other]).exists()


@pytest.mark.django_db
def test_billing_documents_are_announced_once(
    approved, receiver, django_capture_on_commit_callbacks
):
    endpoint, lease = approved
    commenced = lease.commencement + dt.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        billing.lease_bill(lease_id=lease.pk, now=commenced)
    invoices = list(lease.invoices.all())
    assert invoices
    rows = WebhookDelivery.objects.filter(endpoint=endpoint, event_type="invoice.issued")
    assert sorted(r.payload["data"]["number"] for r in rows) == sorted(i.number for i in invoices)
    assert {r.payload["created_at"] for r in rows} == {commenced.isoformat()}
    # Dispatch on queueing is off in these tests: the minute task sends what is due.
    result = deliver_due_webhooks.apply(kwargs={"now": commenced.isoformat()}).get()
    assert result["dispatched"] == len(invoices) + 1  # and the lease.approved one
    assert {r.status for r in rows.all()} == {"succeeded"}
    types = {json.loads(body)["type"] for _, body in receiver.requests}
    assert "invoice.issued" in types
    # Every consumer delivery is done: replaying the events announces nothing more.
    issued = DomainEvent.objects.filter(kind="invoice.issued")
    assert issued.count() == len(invoices)
    for delivery in EventDelivery.objects.filter(event__in=issued):
        assert (delivery.status, events.deliver(delivery.pk)) == ("done", None)
    assert rows.count() == len(invoices)


@pytest.mark.django_db
def test_a_receiver_that_never_answers_costs_a_bounded_time(approved, monkeypatch):
    endpoint, _ = approved
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel completes the handshake) and never answers
    endpoint.url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
    endpoint.save(update_fields=["url"])
    monkeypatch.setattr(webhooks, "READ_TIMEOUT_S", 1.0)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    started = time.monotonic()
    try:
        assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "pending"
    finally:
        silent.close()
    assert time.monotonic() - started < 5
    delivery.refresh_from_db()
    assert "timed out" in delivery.last_error.lower() or "timeout" in delivery.last_error.lower()


@pytest.mark.django_db
def test_private_targets_are_refused_unless_allowed(approved, receiver, settings):
    endpoint, _ = approved
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert "non-public" in delivery.last_error
    assert receiver.requests == []


@pytest.mark.django_db
def test_disabled_endpoint_gives_up(approved, receiver):
    endpoint, _ = approved
    webhooks.webhook_endpoint_disable(endpoint=endpoint)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "failed"
    assert receiver.requests == []


def test_tasks_are_registered_under_their_beat_names():
    import webhooks.tasks  # noqa: F401
    from config.celery import app

    assert {"leasing.deliver_webhook", "leasing.deliver_due_webhooks"} <= set(app.tasks)


# --- DNS rebinding: the address checked is the address connected to ------------------------------

PUBLIC_IP = "93.184.216.34"  # a global address: passes the check


class FlippingResolver:
    """A zero-TTL record: the first answer is a public address, every later one 127.0.0.1."""

    def __init__(self, host: str, monkeypatch):
        self.host = host
        self.calls = 0
        real = socket.getaddrinfo

        def fake(name, port, *args, **kwargs):
            if name != host:
                return real(name, port, *args, **kwargs)
            self.calls += 1
            ip = PUBLIC_IP if self.calls == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))]

        monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.fixture
def connections(monkeypatch):
    """Every outgoing TCP connect is recorded; anything but 127.0.0.1 refuses (no network here),
    127.0.0.1 connects for real."""
    seen: list[tuple] = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        seen.append(address)
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError("refused by the test")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.mark.django_db
def test_a_rebinding_dns_answer_cannot_redirect_a_delivery_to_loopback(
    approved, receiver, settings, monkeypatch, connections
):
    endpoint, _ = approved
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    port = receiver.server.server_address[1]
    endpoint.url = f"http://hooks.tenant.test:{port}/hooks"
    endpoint.save(update_fields=["url"])
    resolver = FlippingResolver("hooks.tenant.test", monkeypatch)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "pending"
    assert resolver.calls == 1  # resolved once, for the check and the connection
    assert connections == [(PUBLIC_IP, port)]  # the checked address, never 127.0.0.1
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert "refused" in delivery.last_error.lower()


@pytest.mark.django_db
def test_an_answer_mixing_public_and_loopback_addresses_is_refused(
    approved, receiver, settings, monkeypatch, connections
):
    endpoint, _ = approved
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    port = receiver.server.server_address[1]
    endpoint.url = f"http://hooks.tenant.test:{port}/hooks"
    endpoint.save(update_fields=["url"])

    def fake(name, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
            for ip in (PUBLIC_IP, "127.0.0.1")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert "non-public" in delivery.last_error
    assert connections == []
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_pinned_connection_still_names_the_host(approved, receiver, monkeypatch):
    """Private targets allowed (local receiver): the name resolves to 127.0.0.1 and the
    request still carries `Host: <name>`."""
    endpoint, _ = approved
    port = receiver.server.server_address[1]
    endpoint.url = f"http://hooks.tenant.test:{port}/hooks"
    endpoint.save(update_fields=["url"])
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda name, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))
        ],
    )
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    headers, _ = receiver.requests[0]
    assert headers["Host"] == f"hooks.tenant.test:{port}"


def test_https_verifies_the_certificate_of_the_host_over_the_checked_address(monkeypatch):
    """TLS runs over the socket to the checked address, with SNI and the certificate check
    for the host name."""
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda name, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC_IP, port))
        ],
    )
    dialled: list = []

    def fake_connect(addresses, timeout):
        dialled.append((addresses, timeout))
        return socket.socketpair()[0]

    wrapped: list[str] = []

    class Context(ssl.SSLContext):
        def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
            assert (self.verify_mode, self.check_hostname) == (ssl.CERT_REQUIRED, True)
            wrapped.append(server_hostname)
            raise ssl.SSLCertVerificationError("certificate verify failed (test)")

    monkeypatch.setattr(webhooks, "_connect", fake_connect)
    monkeypatch.setattr(ssl, "create_default_context", lambda: Context(ssl.PROTOCOL_TLS_CLIENT))
    result = webhooks._post("https://hooks.tenant.test/in", b"{}", {})
    assert result.status_code is None
    assert "certificate" in result.error
    assert dialled == [([(socket.AF_INET, (PUBLIC_IP, 443))], webhooks.CONNECT_TIMEOUT_S)]
    assert wrapped == ["hooks.tenant.test"]


# --- the address rule: globally routable unicast only, embedded IPv4 unwrapped ------------------

NON_PUBLIC = [
    pytest.param("64:ff9b::7f00:1", id="nat64-of-loopback"),
    pytest.param("64:ff9b::a9fe:a9fe", id="nat64-of-link-local"),
    pytest.param("64:ff9b:1::7f00:1", id="nat64-local-use-of-loopback"),
    pytest.param("64:ff9b:1::5db8:d822", id="nat64-local-use-of-public"),  # a local prefix
    pytest.param("2002:7f00:1::1", id="6to4-of-loopback"),
    pytest.param("2002:a9fe:a9fe::1", id="6to4-of-link-local"),
    pytest.param("::127.0.0.1", id="ipv4-compatible-of-loopback"),
    pytest.param("::5db8:d822", id="ipv4-compatible-of-public"),  # deprecated, not routed
    pytest.param("::ffff:127.0.0.1", id="ipv4-mapped-of-loopback"),
    pytest.param("::ffff:10.0.0.8", id="ipv4-mapped-of-private"),
    pytest.param("2001:0:4136:e378:8000:63bf:80ff:fffe", id="teredo-client-loopback"),
    pytest.param("fec0::1", id="site-local"),
    pytest.param("192.0.0.8", id="ietf-protocol-assignment"),
    pytest.param("192.0.0.9", id="ietf-anycast"),
    pytest.param("127.0.0.1", id="loopback"),
    pytest.param("10.0.0.8", id="private"),
    pytest.param("100.64.0.1", id="shared-cgnat"),
    pytest.param("169.254.169.254", id="link-local"),
    pytest.param("0.0.0.0", id="unspecified"),
    pytest.param("224.0.0.1", id="multicast"),
    pytest.param("240.0.0.1", id="reserved"),
    pytest.param("::1", id="v6-loopback"),
    pytest.param("::", id="v6-unspecified"),
    pytest.param("fe80::1", id="v6-link-local"),
    pytest.param("fc00::1", id="v6-unique-local"),
    pytest.param("ff0e::1", id="v6-global-multicast"),
    pytest.param("2001:db8::1", id="v6-documentation"),
]
PUBLIC = [
    pytest.param(PUBLIC_IP, id="v4"),
    pytest.param("2606:4700:4700::1111", id="v6"),
    pytest.param("::ffff:93.184.216.34", id="ipv4-mapped-of-public"),
    pytest.param("64:ff9b::5db8:d822", id="nat64-of-public"),  # DNS64 networks answer this
    pytest.param("2002:5db8:d822::1", id="6to4-of-public"),
]


def in_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def answer(address: str, port: int) -> list[tuple]:
    """A resolver's answer naming `address`, as getaddrinfo gives it."""
    if ":" in address:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
        ]
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_address_classes_are_refused(address):
    assert not webhooks.is_public_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_is_allowed(address):
    assert webhooks.is_public_address(address)


@pytest.mark.django_db
@pytest.mark.parametrize("address", NON_PUBLIC)
def test_registration_refuses_a_non_public_literal(api_a, settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = api_a.post(
        "/api/v1/webhook-endpoints/", {"url": f"https://{in_url(address)}/in"}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["extra"]["fields"] == {"url": ["Must be a public address."]}
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("address", PUBLIC)
def test_registration_accepts_a_public_literal(api_a, settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    url = f"https://{in_url(address)}/in"
    response = api_a.post("/api/v1/webhook-endpoints/", {"url": url}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["url"] == url


@pytest.mark.django_db
@pytest.mark.parametrize(
    "host", ["127.1", "0x7f000001", "2130706433", "0177.0.0.1", "localhost.", "api.localhost"]
)
def test_registration_refuses_other_spellings_of_loopback(tenant_a, settings, host):
    """The resolver reads these as 127.0.0.1: so does the registration check."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(InvalidInput) as refused:
        webhooks.webhook_endpoint_create(tenant=tenant_a, url=f"https://{host}/in")
    assert refused.value.extra == {"fields": {"url": ["Must be a public address."]}}


@pytest.fixture
def pending(tenant_a, settings):
    """A due delivery to an endpoint whose URL the test sets (registered while private targets
    were allowed); from here on they are refused."""
    endpoint = webhooks.webhook_endpoint_create(tenant=tenant_a, url="https://example.com/in")
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id="evt_test_1",
        event_type="lease.approved",
        payload={"id": "evt_test_1"},
        next_attempt_at=timezone.now(),
    )


def attempt_to(delivery, url: str, *, resolving_to: str | None = None, monkeypatch=None):
    """One attempt after pointing the endpoint at `url` (whose name, if `resolving_to` is
    given, resolves to that address only)."""
    if resolving_to is not None:
        monkeypatch.setattr(
            socket, "getaddrinfo", lambda name, port, *a, **k: answer(resolving_to, port)
        )
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(url=url)
    assert webhooks.delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    return delivery


@pytest.mark.django_db
@pytest.mark.parametrize("address", NON_PUBLIC)
def test_delivery_to_a_name_resolving_to_a_non_public_address_never_connects(
    pending, monkeypatch, connections, address
):
    url = "https://hooks.tenant.test/in"
    delivery = attempt_to(pending, url, resolving_to=address, monkeypatch=monkeypatch)
    assert delivery.last_error == "hooks.tenant.test resolves to a non-public address"
    assert connections == []


@pytest.mark.django_db
@pytest.mark.parametrize("address", NON_PUBLIC)
def test_delivery_to_a_non_public_literal_never_connects(pending, connections, address):
    """An endpoint stored before the rule (or while private targets were allowed)."""
    delivery = attempt_to(pending, f"http://{in_url(address)}:9/in")
    assert "non-public" in delivery.last_error
    assert connections == []


@pytest.mark.django_db
@pytest.mark.parametrize("address", PUBLIC)
def test_delivery_to_a_public_address_connects_to_it(pending, monkeypatch, connections, address):
    url = "https://hooks.tenant.test/in"
    delivery = attempt_to(pending, url, resolving_to=address, monkeypatch=monkeypatch)
    assert [a[0] for a in connections] == [address]
    assert "refused by the test" in delivery.last_error


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_the_pinned_connect_refuses_a_non_public_address_itself(settings, connections, address):
    """The check is repeated where the socket is dialled, whoever built the address list."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    (family, _, _, _, sockaddr) = answer(address, 9)[0]
    with pytest.raises(OSError, match="not a public address"):
        webhooks._connect([(family, sockaddr)], 1.0)
    assert connections == []


# --- endpoint limit and the cost of announcing ------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_has_at_most_ten_active_endpoints(tenant_a, tenant_b, api_a):
    for i in range(webhooks.MAX_ACTIVE_ENDPOINTS):
        webhooks.webhook_endpoint_create(tenant=tenant_a, url=f"https://example.com/{i}")
    response = api_a.post(
        "/api/v1/webhook-endpoints/", {"url": "https://example.com/more"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "webhook_endpoint_limit"
    assert response.json()["extra"] == {"limit": 10}
    # Another tenant is not affected; a disabled endpoint frees a place.
    webhooks.webhook_endpoint_create(tenant=tenant_b, url="https://example.com/b")
    first = tenant_a.webhook_endpoints.order_by("pk").first()
    assert api_a.delete(f"/api/v1/webhook-endpoints/{first.pk}/").status_code == 204
    response = api_a.post(
        "/api/v1/webhook-endpoints/", {"url": "https://example.com/more"}, format="json"
    )
    assert response.status_code == 201
    with pytest.raises(webhooks.WebhookEndpointLimit):
        webhooks.webhook_endpoint_create(tenant=tenant_a, url="https://example.com/again")


@pytest.mark.django_db
def test_announcing_costs_the_same_queries_whatever_the_number_of_endpoints(
    approved, tenant_a, tenant_b, receiver
):
    _, lease = approved
    billing.lease_bill(lease_id=lease.pk, now=lease.commencement + dt.timedelta(minutes=1))
    event = DomainEvent.objects.filter(kind="invoice.issued").first()
    assert event is not None

    def announce():
        with CaptureQueriesContext(connection) as queries:
            ids = webhooks.announce(event)
        return ids, len(queries)

    ids, one = announce()
    assert len(ids) == 1
    for i in range(4):
        webhooks.webhook_endpoint_create(tenant=tenant_a, url=f"{receiver.url}&n={i}")
        webhooks.webhook_endpoint_create(tenant=tenant_b, url=f"{receiver.url}&n={i}")
    ids, many = announce()
    assert many == one <= 4
    assert len(ids) == 5  # tenant A's five endpoints; B's are not told about A's invoice


@pytest.mark.django_db
def test_receivables_are_announced_payment_applied_invoice_paid_and_overdue(
    approved, receiver, django_capture_on_commit_callbacks
):
    from billing import payments

    endpoint, lease = approved
    commenced = lease.commencement + dt.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        billing.lease_bill(lease_id=lease.pk, now=commenced)
    invoice = lease.invoices.order_by("period").first()
    later = invoice.due_at + dt.timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=True):
        billing.mark_overdue(now=later)
        billing.mark_overdue(now=later)  # once only
    overdue = WebhookDelivery.objects.filter(endpoint=endpoint, event_type="invoice.overdue")
    assert invoice.pk in {r.payload["data"]["invoice"]["id"] for r in overdue}
    with django_capture_on_commit_callbacks(execute=True):
        payments.payment_record(
            tenant=lease.tenant,
            amount=invoice.total,
            value_date=later.date(),
            reference="W-HOOK",
            invoices=[invoice.pk],
            now=later,
        )
    (applied,) = WebhookDelivery.objects.filter(endpoint=endpoint, event_type="payment.applied")
    assert applied.payload["data"]["amount"] == f"{invoice.total:.2f}"
    assert applied.payload["data"]["invoice"]["number"] == invoice.number
    (paid,) = WebhookDelivery.objects.filter(endpoint=endpoint, event_type="invoice.paid")
    assert (paid.payload["data"]["status"], paid.payload["data"]["balance"]) == ("paid", "0.00")
    assert overdue.count() == len({r.event_id for r in overdue})
