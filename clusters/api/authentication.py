"""`Authorization: Bearer mk_<prefix>_<secret>`: the request acts for a monitoring source.

The operator ingestion API takes a monitoring source's key only (`clusters.ingest`), never a
tenant's: a tenant key is refused like any unknown key (401), and a source key opens nothing
of the tenant API. Refused keys count against the client address like tenant keys do
(`common.api.throttling.count_refused_key`).
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from clusters.ingest import monitoring_source_authenticate
from clusters.models import MonitoringSource
from common.api.throttling import count_refused_key
from common.keys import MAX_KEY_CHARS


@dataclass(frozen=True)
class MonitoringPrincipal:
    """Who is calling: a monitoring source (no Django user)."""

    source: MonitoringSource

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    @property
    def pk(self) -> None:
        return None

    def __str__(self) -> str:
        return f"monitoring source {self.source.name}"


class MonitoringSourceAuthentication(authentication.BaseAuthentication):
    """Bearer monitoring keys. No header → anonymous (then 401); a malformed, unknown or
    revoked key → 401, or 429 once the address has had too many keys refused."""

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
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <monitoring key>'.")
        raw = parts[1]
        if len(raw) > MAX_KEY_CHARS or not raw.isascii():
            raise exceptions.AuthenticationFailed("Invalid monitoring key.")
        source = monitoring_source_authenticate(raw)
        if source is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked monitoring key.")
        return MonitoringPrincipal(source=source), source

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="ops"'


class IsMonitoringSource(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, MonitoringPrincipal)


class MonitoringSourceAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "clusters.api.authentication.MonitoringSourceAuthentication"
    name = "MonitoringKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A monitoring source's key: "
            "`Authorization: Bearer mk_<prefix>_<secret>` "
            "(`manage.py create_monitoring_source NAME`). Tenant keys are refused.",
        }
