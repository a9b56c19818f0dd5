"""API keys of tenants: created once, shown once, stored hashed, revocable, optionally expiring.

A key reads `lk_<prefix>_<secret>`; how it is made, stored and compared is `common/keys.py`
(shared with the monitoring sources' keys).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q

from common.clock import resolve_now as _now
from common.exceptions import InvalidInput, NotFound
from common.keys import expiry_problem, matches, stored_key_create
from common.keys import split_key as _split_key

from .models import ApiKey, Tenant

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_SCHEME = "lk"
# last_used_at is written at most this often per key: a busy key costs one UPDATE a minute.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def split_key(raw: str) -> str | None:
    """The lookup prefix of a well-formed tenant key, or None."""
    return _split_key(raw, KEY_SCHEME)


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
    problem = expiry_problem(expires_at, _now(now))
    if problem:
        raise InvalidInput(extra={"fields": {"expires_at": problem}})
    return stored_key_create(
        ApiKey, KEY_SCHEME, name=name, expires_at=expires_at, actor=actor, tenant=tenant
    )


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
    # Same work whether or not the prefix exists.
    if not matches(raw, key.key_hash if key is not None else None) or key is None:
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
