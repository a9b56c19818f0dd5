"""Operator API keys: created for a staff user (by a superuser, in the admin), shown once,
stored hashed, revocable, optionally expiring.

A key reads `ok_<prefix>_<secret>`; how it is made, stored and compared is `common/keys.py`
(shared with the tenant keys and the monitoring sources' keys). A request with a key acts as
its user: the user must still be active staff, and each operation checks that user's Django
permissions (docs/rules/roles.md).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q

from common.clock import resolve_now
from common.exceptions import InvalidInput
from common.keys import expiry_problem, matches, split_key, stored_key_create

from .models import OperatorKey

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_SCHEME = "ok"
# last_used_at is written at most this often per key: a busy key costs one UPDATE a minute.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@transaction.atomic
def operator_key_create(
    *,
    user: User,
    name: str = "",
    expires_at: dt.datetime | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> tuple[OperatorKey, str]:
    """Create a key acting as `user` (active staff); returns the row and the raw key (the only
    time it exists). `expires_at`, if given, must be aware and in the future."""
    now = resolve_now(now)
    errors = {}
    if not (user.is_active and user.is_staff):
        errors["user"] = "Operator keys belong to active staff users."
    problem = expiry_problem(expires_at, now)
    if problem:
        errors["expires_at"] = problem
    if errors:
        raise InvalidInput(extra={"fields": errors})
    return stored_key_create(
        OperatorKey, KEY_SCHEME, name=name, expires_at=expires_at, actor=actor, user=user
    )


def operator_key_revoke(*, key: OperatorKey, now: dt.datetime | None = None) -> OperatorKey:
    """Revoke a key from now on (a revoked key keeps its first revocation time)."""
    now = resolve_now(now)
    OperatorKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.refresh_from_db(fields=["revoked_at"])
    return key


def operator_key_authenticate(raw: str, *, now: dt.datetime | None = None) -> OperatorKey | None:
    """The live key matching `raw`, with its user, or None: unknown, revoked or expired keys,
    and keys of users no longer active staff, authenticate nothing. One indexed query, a
    constant-time comparison; `last_used_at` written at most once a minute."""
    prefix = split_key(raw, KEY_SCHEME)
    if prefix is None:
        return None
    now = resolve_now(now)
    key = OperatorKey.objects.select_related("user").filter(prefix=prefix).first()
    if not matches(raw, key.key_hash if key is not None else None) or key is None:
        return None
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    if not (key.user.is_active and key.user.is_staff):
        return None
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_RESOLUTION:
        OperatorKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key
