"""Bearer keys shown once and stored hashed: tenant API keys (leasing) and monitoring sources'
ingestion keys (clusters) share this.

A key reads `<scheme>_<prefix>_<secret>`. `prefix` (12 hex characters) is stored in clear so a
request finds its row with one indexed lookup; the whole key is stored only as its SHA-256 hex
digest and compared in constant time (`hmac.compare_digest`). Keys are 256-bit random strings,
so a fast hash is enough (no password stretching needed: there is nothing to guess).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

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
