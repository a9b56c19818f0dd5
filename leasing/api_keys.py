"""API keys of tenants: created once, shown once, stored hashed, revocable, optionally expiring.

A key reads `lk_<prefix>_<secret>`. `prefix` (12 hex characters) is stored in clear so a request
finds its row with one indexed lookup; the whole key is stored only as its SHA-256 hex digest
and compared in constant time (`hmac.compare_digest`). Keys are 256-bit random strings, so a
fast hash is enough (no password stretching needed: there is nothing to guess).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.clock import resolve_now as _now
from common.exceptions import InvalidInput, NotFound

from .models import ApiKey, Tenant

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_SCHEME = "lk"
PREFIX_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32
# last_used_at is written at most this often per key: a busy key costs one UPDATE a minute.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_key(raw: str) -> str:
    """SHA-256 hex digest of the whole key (what is stored)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def split_key(raw: str) -> str | None:
    """The lookup prefix of a well-formed key, or None (malformed keys never reach the DB)."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_BYTES * 2 or not all(c in "0123456789abcdef" for c in prefix):
        return None
    if not 20 <= len(secret) <= 100 or not secret.isascii():
        return None
    return prefix


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str = "",
    expires_at: dt.datetime | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for `tenant`; returns the row and the raw key (the only time it exists).

    `expires_at`, if given, must be aware and in the future.
    """
    now = _now(now)
    if expires_at is not None and (timezone.is_naive(expires_at) or expires_at <= now):
        raise InvalidInput(extra={"fields": {"expires_at": "Must be an aware future instant."}})
    prefix = secrets.token_hex(PREFIX_BYTES)
    raw = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name[:100],
        prefix=prefix,
        key_hash=hash_key(raw),
        created_by=actor if actor is not None and actor.is_authenticated else None,
        expires_at=expires_at,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(
    *, key: ApiKey, actor: User | None = None, now: dt.datetime | None = None
) -> ApiKey:
    """Revoke a key from now on. Revoking a revoked key keeps the first revocation time."""
    now = _now(now)
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.refresh_from_db(fields=["revoked_at"])
    return key


def api_key_authenticate(raw: str, *, now: dt.datetime | None = None) -> ApiKey | None:
    """The live key matching `raw` (with its tenant), or None.

    One indexed query by prefix, then a constant-time comparison of the digests, so the
    response time says nothing about how much of a guessed key was right. Revoked and expired
    keys authenticate nothing. Records `last_used_at` at most once a minute.
    """
    prefix = split_key(raw)
    if prefix is None:
        return None
    now = _now(now)
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
    digest = hash_key(raw)
    if key is None:
        hmac.compare_digest(digest, digest)  # same work whether or not the prefix exists
        return None
    if not hmac.compare_digest(digest, key.key_hash):
        return None
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_RESOLUTION:
        # Compare-and-set: concurrent requests of one key write at most once per minute.
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


def demo_key_for(tenant_slug: str, *, name: str = "demo") -> str:
    """A new raw key for the tenant `tenant_slug` (for `make run` to print). Not found → error."""
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    if tenant is None:
        raise NotFound(f"No tenant with slug {tenant_slug!r}.")
    return api_key_create(tenant=tenant, name=name)[1]
