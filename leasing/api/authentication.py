"""`Authorization: Bearer <api key>`: the request acts for the key's tenant.

`request.user` is a `TenantPrincipal` (no Django user: a key belongs to a tenant, not a person)
and `request.auth` the `ApiKey` row with its tenant loaded. Every view scopes its queryset by
`request.auth.tenant`.
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from common.keys import MAX_KEY_CHARS
from leasing.api_keys import api_key_authenticate
from leasing.models import ApiKey, Tenant

from .throttling import count_refused_key


@dataclass(frozen=True)
class TenantPrincipal:
    """Who is calling: a tenant, through one of its API keys."""

    tenant: Tenant
    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    @property
    def pk(self) -> None:  # never a Django user
        return None

    def __str__(self) -> str:
        return f"{self.tenant.slug} (key {self.api_key.prefix})"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Bearer API keys. No header → anonymous (the permission then answers 401); a header
    that is malformed or names a revoked, expired or unknown key → 401 at once, or 429 once
    the client's address has had too many keys refused (`throttling.InvalidKeyThrottle`)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        try:
            return self._authenticate(header)
        except exceptions.AuthenticationFailed:
            count_refused_key(request)
            raise

    def _authenticate(self, header: str):
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        raw = parts[1]
        if len(raw) > MAX_KEY_CHARS or not raw.isascii():
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        return TenantPrincipal(tenant=key.tenant, api_key=key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "leasing.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key: `Authorization: Bearer lk_<prefix>_<secret>`.",
        }
