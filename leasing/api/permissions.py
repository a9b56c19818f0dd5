"""Only callers authenticated by a tenant API key reach the tenant API."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from .authentication import TenantPrincipal


class IsTenant(BasePermission):
    """A tenant principal (from `ApiKeyAuthentication`); anything else is 401.

    Object-level access is not decided here: every queryset is filtered by the tenant, so
    another tenant's object is simply not found (404), never forbidden (403).
    """

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantPrincipal)


def tenant_of(request):
    """The calling tenant (`request.auth.tenant`)."""
    return request.user.tenant
