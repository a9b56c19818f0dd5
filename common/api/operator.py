"""`Authorization: Bearer ok_<prefix>_<secret>`: the operator API acts as the key's staff user.

`request.user` is the key's Django user (active staff, checked at each request) and
`request.auth` the `OperatorKey`. A view names the Django permissions each of its actions needs
(`operator_permissions`, e.g. `{"create": ("billing.add_payment",)}`); a user without them gets
403 `permission_denied`, and an action the view does not list is refused to everyone
(docs/rules/roles.md). Tenant and monitoring keys are refused (401).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from common.api.authentication import BearerKeyAuthentication
from common.api.throttling import SettingsRateThrottle
from common.models import OperatorKey
from common.operator_keys import operator_key_authenticate


class OperatorKeyAuthentication(BearerKeyAuthentication):
    """Bearer operator keys: unknown, revoked or expired, or whose user is no longer active
    staff → 401."""

    what = "operator key"
    realm = "ops"
    refused = "Invalid, revoked or expired operator key, or its user is not active staff."

    def principal(self, raw: str):
        key = operator_key_authenticate(raw)
        return None if key is None else (key.user, key)


class HasOperatorPermissions(BasePermission):
    """An operator key's user holding every permission the view lists for the action."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, OperatorKey):
            return False  # no key: 401
        needed = view.operator_permissions.get(getattr(view, "action", None))
        if needed is None:
            raise exceptions.PermissionDenied("This operation is not open to operator keys.")
        if not request.user.has_perms(needed):
            raise exceptions.PermissionDenied(
                f"{request.user} lacks the permissions {', '.join(needed)}."
            )
        return True


class OperatorKeyRateThrottle(SettingsRateThrottle):
    """Requests per operator key: `OPS_OPERATOR_THROTTLE_RATE` (default 600 a minute)."""

    scope = "operator_api"
    rate_setting = "OPS_OPERATOR_THROTTLE_RATE"
    default_rate = "600/min"

    def get_cache_key(self, request, view) -> str | None:
        key = getattr(request, "auth", None)
        if not isinstance(key, OperatorKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": key.prefix}


class OperatorKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "common.api.operator.OperatorKeyAuthentication"
    name = "OperatorKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An operator key, created for a staff user in the admin (Operator "
            "keys) and shown once: `Authorization: Bearer ok_<prefix>_<secret>`. The request "
            "acts as that user, with that user's permissions.",
        }
