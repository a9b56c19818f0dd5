"""`Authorization: Bearer mk_<prefix>_<secret>`: the request acts for a monitoring source.

The operator ingestion API takes a monitoring source's key only (`clusters.ingest`), never a
tenant's: a tenant key is refused like any unknown key (401), and a source key opens nothing
of the tenant API. Refused keys count against the client address like tenant keys do
(`common.api.throttling.count_refused_key`).
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.permissions import BasePermission

from clusters.ingest import monitoring_source_authenticate
from clusters.models import MonitoringSource
from common.api.authentication import BearerKeyAuthentication


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


class MonitoringSourceAuthentication(BearerKeyAuthentication):
    """Bearer monitoring keys (`common.api.authentication`): unknown or revoked → 401."""

    what = "monitoring key"
    realm = "ops"
    refused = "Invalid or revoked monitoring key."

    def principal(self, raw: str) -> tuple[MonitoringPrincipal, MonitoringSource] | None:
        source = monitoring_source_authenticate(raw)
        return None if source is None else (MonitoringPrincipal(source=source), source)


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
