"""Bearer keys shown once and stored hashed: tenant API keys (leasing), operator keys (common)
and monitoring sources' ingestion keys (clusters) share this.

A key reads `<scheme>_<prefix>_<secret>`. `prefix` (12 hex characters) is stored in clear so a
request finds its row with one indexed lookup; the whole key is stored only as its SHA-256 hex
digest and compared in constant time (`hmac.compare_digest`). Keys are 256-bit random strings,
so a fast hash is enough (no password stretching needed: there is nothing to guess).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any, TypeVar

from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .models import StoredKey

K = TypeVar("K", bound="StoredKey")

PREFIX_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32
MAX_KEY_CHARS = 200


def hash_key(raw: str) -> str:
    """SHA-256 hex digest of the whole key (what is stored)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def new_key(scheme: str) -> tuple[str, str]:
    """A fresh key of `scheme`: (lookup prefix, raw key). The raw key is shown once."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    return prefix, f"{scheme}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def split_key(raw: str, scheme: str) -> str | None:
    """The lookup prefix of a well-formed key of `scheme`, or None (malformed keys never reach
    the database)."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != scheme:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_BYTES * 2 or not all(c in "0123456789abcdef" for c in prefix):
        return None
    if not 20 <= len(secret) <= 100 or not secret.isascii():
        return None
    return prefix


def matches(raw: str, stored_hash: str | None) -> bool:
    """Whether `raw` hashes to `stored_hash`, in constant time. `None` (no row for the prefix)
    does the same work and answers False, so timing says nothing about which prefixes exist."""
    digest = hash_key(raw)
    if stored_hash is None:
        hmac.compare_digest(digest, digest)
        return False
    return hmac.compare_digest(digest, stored_hash)


def expiry_problem(expires_at: dt.datetime | None, now: dt.datetime) -> str | None:
    """Why `expires_at` cannot be a key's expiry (None when it can: absent, or aware and
    in the future)."""
    if expires_at is not None and (timezone.is_naive(expires_at) or expires_at <= now):
        return "Must be an aware future instant."
    return None


def stored_key_create(
    model: type[K],
    scheme: str,
    *,
    name: str,
    expires_at: dt.datetime | None,
    actor: User | None,
    **owner: Any,
) -> tuple[K, str]:
    """A new key row of `model` for `owner` (its owner field) and the raw key, which exists
    only here: the caller shows it once."""
    prefix, raw = new_key(scheme)
    key = model._default_manager.create(
        **owner,
        name=name[:100],
        prefix=prefix,
        key_hash=hash_key(raw),
        created_by=actor if actor is not None and actor.is_authenticated else None,
        expires_at=expires_at,
    )
    return key, raw
