"""Webhooks: tenants' endpoints, signed deliveries, retries with backoff.

Signing follows Standard Webhooks (standardwebhooks.com): each request carries
`webhook-id` (the event id, the same on every retry: receivers dedupe on it), `webhook-timestamp`
(Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed
with the endpoint secret `whsec_<base64 key>`.

Events: webhooks consume domain events (`common.events`; consumer `webhooks.announce`,
registered in the webhooks app config): lease events (`lease.approved`, `lease.activated`,
`notice.received`, `notice.effective`, emitted by the leasing services) and issued billing
documents (`invoice.issued`, `credit_note.issued`, emitted by billing in the issuing
transaction). Consuming one writes a `WebhookDelivery` per subscribed active endpoint of the
tenant (unique per endpoint and event id, so a duplicated event queues nothing twice) and
dispatches them after commit; the consumer is exactly once per event, the HTTP delivery has its
own retries below. Its `wants` filter (`listening`) skips, where the event is emitted, the
events of tenants that have no endpoint for them.

Delivery (`delivery_attempt`) claims the row (compare-and-set on `next_attempt_at`, so two
workers never send the same attempt), posts with bounded timeouts and no redirects, and records
the outcome: 2xx → succeeded; otherwise retried with exponential backoff until
`MAX_ATTEMPTS`, then failed. Operators read the log in the admin.

Targets must be globally routable unicast addresses (`is_public_address`: decided by address
class after unwrapping any IPv4 address an IPv6 form carries) unless
`settings.WEBHOOK_ALLOW_PRIVATE_TARGETS` is true (tests and local demos), both when an endpoint is
registered (literal addresses) and at each delivery (resolved addresses). A delivery resolves the
host once and connects to the addresses it checked (Host header, SNI and certificate still name
the host), so a DNS answer that changes after the check cannot redirect a signed request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

# Webhooks sit beside the top of the layering (docs/architecture.md): they may name billing's
# events.
from billing.choices import DocumentEvent, ReceivableEvent
from clusters.fleet import FleetEvent
from common.clock import resolve_now as _now
from common.db import lock_row
from common.events import Event
from common.exceptions import Conflict, InvalidInput, NotFound
from common.models import DomainEvent
from common.retry import exponential_backoff
from leasing.events import EventKind
from leasing.models import Tenant

from .choices import WebhookDeliveryStatus
from .models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# Emitted by leasing's acceptance and replacement services (docs/architecture.md, events).
NODE_ACCEPTED = "node.accepted"
NODE_REPLACED = "node.replaced"
INVOICE_ISSUED = DocumentEvent.INVOICE_ISSUED
CREDIT_NOTE_ISSUED = DocumentEvent.CREDIT_NOTE_ISSUED
SERVICE_CREDIT_ISSUED = DocumentEvent.SERVICE_CREDIT_ISSUED
LINE_CANCELLED_LATE_DELIVERY = DocumentEvent.LINE_CANCELLED_LATE_DELIVERY
LEASE_EVENT_TYPES = (
    EventKind.LEASE_APPROVED,
    EventKind.LEASE_ACTIVATED,
    EventKind.NOTICE_RECEIVED,
    EventKind.NOTICE_EFFECTIVE,
)
# Announced by `announce` (the tenant is in the payload); the fleet's kinds by `webhooks.fleet`.
RECEIVABLE_EVENT_TYPES = (
    ReceivableEvent.PAYMENT_APPLIED,
    ReceivableEvent.INVOICE_PAID,
    ReceivableEvent.INVOICE_OVERDUE,
)
ANNOUNCED_TYPES = (
    *LEASE_EVENT_TYPES,
    INVOICE_ISSUED,
    CREDIT_NOTE_ISSUED,
    SERVICE_CREDIT_ISSUED,
    LINE_CANCELLED_LATE_DELIVERY,
    *RECEIVABLE_EVENT_TYPES,
)
FLEET_EVENT_TYPES = (
    FleetEvent.INCIDENT_OPENED,
    FleetEvent.INCIDENT_RESOLVED,
    FleetEvent.MAINTENANCE_SCHEDULED,
    FleetEvent.MAINTENANCE_CHANGED,
    NODE_ACCEPTED,
    NODE_REPLACED,
)
# What an endpoint may subscribe to.
EVENT_TYPES = (*ANNOUNCED_TYPES, *FLEET_EVENT_TYPES)

MAX_ATTEMPTS = 8
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=6)
# A claimed attempt is invisible to the sweep for this long (longer than one attempt can take).
CLAIM_FOR = dt.timedelta(seconds=60)
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
# At most this many of a host's (checked) addresses are tried, each with the connect timeout.
MAX_CONNECT_ADDRESSES = 3
TIMESTAMP_TOLERANCE_S = 300
MAX_ERROR_CHARS = 500
MAX_BODY_BYTES = 1_000_000
# Active endpoints a tenant may have: each one multiplies every event's deliveries.
MAX_ACTIVE_ENDPOINTS = 10


class WebhookEndpointLimit(Conflict):
    """The tenant already has the maximum number of active endpoints."""

    code = "webhook_endpoint_limit"
    default_message = "Too many active webhook endpoints; delete one first."


# --- signing ------------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: dt.datetime | None = None,
    tolerance_s: int = TIMESTAMP_TOLERANCE_S,
) -> bool:
    """What a receiver does: recompute the signature, compare in constant time, and refuse
    timestamps too far from now (replays)."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
        given = lower["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    now = now or timezone.now()
    if abs(now.timestamp() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in given)


# --- targets ------------------------------------------------------------------------------------


def _private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


# IPv6 prefixes whose last 32 bits are an IPv4 address a translator forwards to: the NAT64
# well-known prefix (RFC 6052) and the local-use translation prefix (RFC 8215).
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# IETF protocol assignments (RFC 6890): service anycast and NAT/DS-Lite plumbing. Python counts
# some of it global (192.0.0.9 and .10 on newer versions, all but .0/29 and .170/31 on 3.11);
# none of it is a tenant's receiver, so the whole block is refused.
_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.IPv4Network("192.0.0.0/24")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, where a packet to it may end up: IPv4-mapped
    (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (last 32 bits), 6to4 (bits 16-48)
    and Teredo (the server, bits 32-64, and the client, the last 32 bits inverted)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if int(ip) >> 32 == 0 or ip in _NAT64_WELL_KNOWN or ip in _NAT64_LOCAL_USE:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def _routable_unicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The address's own class: globally reachable unicast, nothing special-purpose."""
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    if ip.is_private or ip.is_loopback or ip.is_link_local:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return not ip.is_site_local  # fec0::/10, deprecated but still routed by some stacks
    return ip not in _IETF_PROTOCOL_ASSIGNMENTS


def is_public_address(address: str) -> bool:
    """Whether a webhook may be sent to `address`: only globally routable unicast.

    Decided by class (`ipaddress`'s registry flags), not by a list of forbidden ranges. An IPv6
    address that carries an IPv4 address is unwrapped and every IPv4 address it carries must be
    public too (a translator or tunnel delivers the packet there). IPv4-mapped addresses and the
    NAT64 well-known prefix are the IPv4 address itself (the kernel, or a DNS64/NAT64 network,
    sends to it), so they are decided by it alone: a receiver reached through NAT64 still works.
    The other forms must also pass as IPv6: the local-use NAT64 prefix, IPv4-compatible
    addresses (deprecated) and Teredo are not globally routable, so they are refused whatever
    they carry; 6to4 with a public IPv4 address is. Anything unparseable is refused.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _routable_unicast(ip)
    embedded = _embedded_ipv4(ip)
    if not all(_routable_unicast(v4) for v4 in embedded):
        return False
    if ip.ipv4_mapped is not None or ip in _NAT64_WELL_KNOWN:
        return True
    return _routable_unicast(ip)


def _literal_address(host: str) -> str | None:
    """`host` as an address if it is one, including the legacy IPv4 spellings the resolver
    accepts (`127.1`, `0x7f000001`, `2130706433`); None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host.replace(".", "").isalnum() and host[:1].isdigit():
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str) -> None:
    """Refuse what can never be a tenant's public receiver (scheme, credentials, literal
    private addresses). Hostnames are resolved and checked again at each delivery."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(extra={"fields": {"url": ["Must be an http(s) URL."]}})
    if parts.username or parts.password:
        raise InvalidInput(extra={"fields": {"url": ["Must not carry credentials."]}})
    if _private_allowed():
        return
    if parts.scheme != "https":
        raise InvalidInput(extra={"fields": {"url": ["Must use https."]}})
    host = parts.hostname.rstrip(".")
    literal = _literal_address(host)
    if (
        host == "localhost"
        or host.endswith(".localhost")
        or (literal is not None and not is_public_address(literal))
    ):
        raise InvalidInput(extra={"fields": {"url": ["Must be a public address."]}})


def _resolve(host: str, port: int) -> tuple[list[tuple[int, tuple]], str | None]:
    """Resolve `host` once: the addresses to connect to, or an error message if it cannot be
    resolved or any of its addresses is one deliveries may not reach.

    The caller connects to these very addresses (never to the name again), so a record that
    changes between the check and the connection (DNS rebinding) cannot redirect the request.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return [], f"cannot resolve {host}: {exc}"
    addresses: list[tuple[int, tuple[Any, ...]]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        return [], f"cannot resolve {host}: no address"
    if not _private_allowed() and not all(
        is_public_address(sockaddr[0]) for _, sockaddr in addresses
    ):
        return [], f"{host} resolves to a non-public address"
    return addresses[:MAX_CONNECT_ADDRESSES], None


def _connect(addresses: list[tuple[int, tuple]], timeout: float | None) -> socket.socket:
    """A TCP connection to the first of the checked `addresses` that answers. The address rule
    is applied again here, at the only place a delivery dials, whoever built the list."""
    error: OSError | None = None
    for family, sockaddr in addresses:
        if not _private_allowed() and not is_public_address(sockaddr[0]):
            error = OSError(f"{sockaddr[0]} is not a public address")
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host` (the Host header) over a connection to already checked addresses."""

    def __init__(self, host: str, port: int, *, addresses: list[tuple[int, tuple]], **kwargs):
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS likewise; the certificate is verified for, and SNI names, `host`."""

    def __init__(self, host: str, port: int, *, addresses: list[tuple[int, tuple]], **kwargs):
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        sock = _connect(self.addresses, self.timeout)
        try:
            # http.client's own SSL context (typeshed leaves that private attribute out).
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise


# --- endpoints ----------------------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    description: str = "",
    event_types: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret. `event_types` empty means every type.

    Refused with `webhook_endpoint_limit` when the tenant has `MAX_ACTIVE_ENDPOINTS` active.
    """
    _now(now)
    check_url(url)
    types = sorted(set(event_types))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(extra={"fields": {"event_types": [f"Unknown: {', '.join(unknown)}."]}})
    # The tenant row lock serializes concurrent registrations, so the count stays exact.
    lock_row(Tenant, tenant.pk)
    if WebhookEndpoint.objects.filter(tenant=tenant, is_active=True).count() >= (
        MAX_ACTIVE_ENDPOINTS
    ):
        raise WebhookEndpointLimit(extra={"limit": MAX_ACTIVE_ENDPOINTS})
    return WebhookEndpoint.objects.create(
        tenant=tenant,
        url=url,
        description=description[:200],
        secret=new_secret(),
        event_types=types,
    )


@transaction.atomic
def webhook_endpoint_disable(
    *, endpoint: WebhookEndpoint, now: dt.datetime | None = None
) -> WebhookEndpoint:
    """Stop sending to the endpoint. Kept (not deleted) so its delivery log stays readable;
    pending deliveries give up at their next attempt."""
    now = _now(now)
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now
    )
    if not updated:
        raise NotFound()
    endpoint.refresh_from_db()
    return endpoint


# --- events → deliveries ------------------------------------------------------------------------


def _subscribed(endpoints: Iterable[WebhookEndpoint], event_type: str) -> list[WebhookEndpoint]:
    return [e for e in endpoints if not e.event_types or event_type in e.event_types]


def _payload(event_id: str, event_type: str, at: dt.datetime, data: dict[str, Any]) -> dict:
    envelope = {"id": event_id, "type": event_type, "created_at": at.isoformat(), "data": data}
    # Round-trip through JSON so what is stored is exactly what is sent.
    return json.loads(json.dumps(envelope, cls=DjangoJSONEncoder))


def listening(events: Sequence[Event]) -> list[Event]:
    """Which of these events (of one kind) some active endpoint of their tenant is subscribed
    to: the consumer's `wants` filter, run where the events are emitted. One query per batch,
    so a billing run issuing thousands of invoices queues nothing for tenants without an
    endpoint."""
    tenant_ids = {event.payload["tenant"] for event in events}
    subscriptions: dict[int, list[list[str]]] = defaultdict(list)
    for tenant_id, types in WebhookEndpoint.objects.filter(
        is_active=True, tenant_id__in=tenant_ids
    ).values_list("tenant_id", "event_types"):
        subscriptions[tenant_id].append(types)
    return [
        event
        for event in events
        if any(not types or event.kind in types for types in subscriptions[event.payload["tenant"]])
    ]


def lease_event_data(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    """Webhook id and data of a lease event: the lease as of the event, the move, the detail
    (the tenant's own view: nothing internal, such as a reclaim decision, is in it)."""
    p = event.payload
    data = {key: p[key] for key in ("lease", "from_status", "to_status", "at", "detail")}
    return f"evt_lease_{p['lease_event']}", data


def _receivable_data(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    """Webhook id and data of `payment.applied`, `invoice.paid` and `invoice.overdue`: the
    invoice with its balance as of now. An invoice may be paid (or overdue) again after a
    reversal, so the id carries the domain event's."""
    from billing.api.selectors import invoice_list_for_tenant
    from leasing.models import Tenant as TenantModel

    p = event.payload
    tenant = TenantModel(pk=p["tenant"])
    invoice_id = p["invoice"] if event.kind == ReceivableEvent.PAYMENT_APPLIED else event.subject_id
    inv = invoice_list_for_tenant(tenant).get(pk=invoice_id)
    data: dict[str, Any] = {
        "invoice": {"id": inv.pk, "number": inv.number},
        "status": inv.status,
        "currency": inv.currency,
        "total": f"{inv.total:.2f}",
        "balance": f"{inv.balance:.2f}",  # type: ignore[attr-defined]  # annotated
        "due_at": inv.due_at.isoformat() if inv.due_at else None,
    }
    if event.kind == ReceivableEvent.PAYMENT_APPLIED:
        data.update(payment=event.subject_id, amount=p["amount"])
        return f"evt_payapp_{p['application']}", data
    suffix = "paid" if event.kind == ReceivableEvent.INVOICE_PAID else "overdue"
    return f"evt_inv_{inv.pk}_{suffix}_{event.pk}", data


def _document_data(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    """Webhook id and data of an issued invoice or credit note (immutable once issued, so
    reading it now reads it as issued)."""
    from billing.models import CreditNote, Invoice

    invoice = event.subject == "invoice"
    doc: Any = (  # an Invoice or a CreditNote, told apart by `invoice`
        (Invoice if invoice else CreditNote)
        .objects.select_related("lease")
        .get(pk=event.subject_id)
    )
    data = {
        "id": doc.pk,
        "number": doc.number,
        "lease": {"id": doc.lease_id, "number": doc.lease.number},
        "currency": doc.currency,
        "total": f"{doc.total:.2f}",
        "issued_at": doc.issued_at.isoformat(),
    }
    if invoice:
        data.update(
            period=doc.period.isoformat(),
            kind=doc.kind,
            due_at=doc.due_at.isoformat() if doc.due_at else None,
        )
        return f"evt_inv_{doc.pk}", data
    data["invoice"] = doc.invoice_id
    data["kind"] = doc.kind
    if event.kind == SERVICE_CREDIT_ISSUED:
        # Its own webhook id (a tenant subscribed to both kinds gets both), with the month and
        # the availability report.
        report = getattr(doc, "availability_report", None)
        data["period"] = doc.period.isoformat() if doc.period else None
        data["availability"] = report.report if report is not None else None
        return f"evt_sc_{doc.pk}", data
    return f"evt_cn_{doc.pk}", data


def _queue(rows: list[WebhookDelivery]) -> list[int]:
    """Insert deliveries (duplicates of (endpoint, event) ignored); ids of the pending ones."""
    if not rows:
        return []
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    keys = Q()
    for row in rows:
        keys |= Q(endpoint_id=row.endpoint_id, event_id=row.event_id)
    return list(
        WebhookDelivery.objects.filter(keys, status=WebhookDeliveryStatus.PENDING, attempts=0)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def announce(event: DomainEvent) -> list[int]:
    """The webhook consumer of domain events: one pending delivery per active endpoint of the
    event's tenant subscribed to its kind, dispatched once the consumer's transaction commits.
    Returns the ids of the pending deliveries.

    Four queries whatever the number of endpoints. (endpoint, event id) is unique, so a
    duplicated event queues nothing twice; the webhook id is the same for both, so receivers
    dedupe it anyway.
    """
    return queue_for_tenants(
        [event.payload["tenant"]],
        event,
        lambda: _announced_data(event),
    )


def _announced_data(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    """The webhook id and data of an event `announce` sends."""
    if event.subject == "lease":
        return lease_event_data(event)
    if event.kind in RECEIVABLE_EVENT_TYPES:
        return _receivable_data(event)
    if event.kind == LINE_CANCELLED_LATE_DELIVERY:
        # A line is cancelled once: the line's id is the webhook id. The payload is built by
        # billing for the tenant (figures, credit notes); the tenant id is the envelope's.
        data = {k: v for k, v in event.payload.items() if k != "tenant"}
        return f"evt_ldc_{event.subject_id}", data
    return _document_data(event)


def queue_for_tenants(
    tenant_ids: Iterable[int],
    event: DomainEvent,
    data: Callable[[], tuple[str, dict[str, Any]]],
) -> list[int]:
    """Queue `event` for every active endpoint of these tenants subscribed to its kind, with
    the webhook id and data `data()` gives (called only if some endpoint listens), dispatched
    after commit. Returns the ids of the pending deliveries."""
    endpoints = _subscribed(
        WebhookEndpoint.objects.filter(tenant_id__in=list(tenant_ids), is_active=True).order_by(
            "pk"
        ),
        event.kind,
    )
    if not endpoints:
        return []
    event_id, body = data()
    payload = _payload(event_id, event.kind, event.occurred_at, body)
    now = timezone.now()  # when the first attempt is due: the sender's clock, not the event's
    ids = _queue(
        [
            WebhookDelivery(
                endpoint=endpoint,
                event_id=event_id,
                event_type=event.kind,
                payload=payload,
                next_attempt_at=now,
            )
            for endpoint in endpoints
        ]
    )
    transaction.on_commit(lambda: _dispatch(ids), robust=True)
    return ids


def _dispatch(ids: Iterable[int]) -> None:
    """Send each delivery to a worker (inline when Celery runs eagerly)."""
    if not getattr(settings, "WEBHOOK_DISPATCH_ON_EVENT", True):
        return  # left for the minute sweep
    from .tasks import deliver_webhook

    for pk in ids:
        try:
            deliver_webhook.apply_async(args=(pk,), expires=int(CLAIM_FOR.total_seconds()) * 10)
        except Exception:  # a broker hiccup: the minute sweep sends it anyway
            logger.warning("webhook delivery %s not dispatched; the sweep will", pk, exc_info=True)


# --- delivery -----------------------------------------------------------------------------------


def backoff(attempts: int) -> dt.timedelta:
    """Wait after the `attempts`-th failure: 30 s, 1 min, 2 min, ... capped at 6 h."""
    return exponential_backoff(attempts, base=BACKOFF_BASE, cap=BACKOFF_CAP)


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str


def _post(url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    """One POST with bounded connect and read timeouts; redirects are not followed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses, refused = _resolve(host, port)
    if refused:
        return Attempt(None, refused)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = _PinnedHTTPSConnection(
            host,
            port,
            addresses=addresses,
            timeout=CONNECT_TIMEOUT_S,
            context=ssl.create_default_context(),
        )
    else:
        conn = _PinnedHTTPConnection(host, port, addresses=addresses, timeout=CONNECT_TIMEOUT_S)
    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(READ_TIMEOUT_S)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)
        return Attempt(response.status, "" if 200 <= response.status < 300 else response.reason)
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _claim(delivery_id: int, now: dt.datetime) -> WebhookDelivery | None:
    """Take the attempt if it is due and nobody else holds it (compare-and-set)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(
                pk=delivery_id,
                status=WebhookDeliveryStatus.PENDING,
                next_attempt_at__lte=now,
            )
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts = F("attempts") + 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + CLAIM_FOR
        delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
        delivery.refresh_from_db(fields=["attempts"])
        return delivery


def delivery_attempt(*, delivery_id: int, now: dt.datetime | None = None) -> str | None:
    """Attempt one due delivery; returns its status after the attempt (None if not due).

    Safe to call twice or concurrently: only one caller claims a given attempt.
    """
    now = _now(now)
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDeliveryStatus.FAILED, last_error="endpoint disabled"
        )
        return WebhookDeliveryStatus.FAILED
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_BODY_BYTES:
        body = body[:0]
    timestamp = int(timezone.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Landlord-Webhooks/1",
        **signature_headers(endpoint.secret, delivery.event_id, timestamp, body),
    }
    result = _post(endpoint.url, body, headers)
    done = result.status_code is not None and 200 <= result.status_code < 300
    fields: dict[str, Any] = {
        "last_status_code": result.status_code,
        "last_error": result.error[:MAX_ERROR_CHARS],
    }
    if done:
        fields.update(status=WebhookDeliveryStatus.SUCCEEDED, delivered_at=timezone.now())
        fields["next_attempt_at"] = None
    elif delivery.attempts >= MAX_ATTEMPTS:
        fields.update(status=WebhookDeliveryStatus.FAILED, next_attempt_at=None)
    else:
        fields["next_attempt_at"] = now + backoff(delivery.attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    status = fields.get("status", WebhookDeliveryStatus.PENDING)
    if not done:
        logger.info(
            "webhook %s to endpoint %s attempt %s: %s %s",
            delivery.event_id,
            endpoint.pk,
            delivery.attempts,
            result.status_code,
            result.error,
        )
    return status


def due_delivery_ids(*, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    now = _now(now)
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_delivery_retry(*, delivery: WebhookDelivery, now: dt.datetime | None = None) -> None:
    """Operator: send a failed (or waiting) delivery again at the next sweep, attempts reset."""
    now = _now(now)
    WebhookDelivery.objects.filter(pk=delivery.pk).exclude(
        status=WebhookDeliveryStatus.SUCCEEDED
    ).update(status=WebhookDeliveryStatus.PENDING, attempts=0, next_attempt_at=now)
