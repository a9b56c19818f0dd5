"""`Authorization: Bearer <api key>`: the request acts for the key's tenant.

`request.user` is a `TenantPrincipal` (no Django user: a key belongs to a tenant, not a person)
and `request.auth` the `ApiKey` row with its tenant loaded. Every view scopes its queryset by
`request.auth.tenant`.
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from common.api.authentication import BearerKeyAuthentication
from leasing.api_keys import api_key_authenticate
from leasing.models import ApiKey, Tenant


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


class ApiKeyAuthentication(BearerKeyAuthentication):
    """Bearer API keys (`common.api.authentication`): revoked, expired or unknown → 401."""

    what = "api key"
    realm = "api"
    refused = "Invalid, revoked or expired API key."

    def principal(self, raw: str) -> tuple[TenantPrincipal, ApiKey] | None:
        key = api_key_authenticate(raw)
        return None if key is None else (TenantPrincipal(tenant=key.tenant, api_key=key), key)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "leasing.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key: `Authorization: Bearer lk_<prefix>_<secret>`.",
        }
