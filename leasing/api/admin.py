"""Operator admin for the tenant API keys (create shows the key once, revoke).

Imported from `leasing/admin.py` (the admin autodiscovers `leasing.admin` only). Every change
goes through a service (`leasing.api_keys`).
"""

from __future__ import annotations

from django.contrib import admin

from common.admin import StoredKeyAdmin
from leasing.api_keys import api_key_create, api_key_revoke
from leasing.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(StoredKeyAdmin):
    """Keys are created here (the raw key is shown once, in a message) and revoked; the hash
    is never shown and nothing else about a key can be edited."""

    list_display = [
        "prefix",
        "tenant",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["tenant"]
    search_fields = ["prefix", "name", "tenant__name", "tenant__slug"]
    list_select_related = ["tenant"]
    owner = "tenant"
    key_label = "API key"
    actions = ["revoke", "create_another"]

    def create_key(self, request, obj):
        return api_key_create(
            tenant=obj.tenant, name=obj.name, expires_at=obj.expires_at, actor=request.user
        )

    def revoke_key(self, request, key):
        api_key_revoke(key=key, actor=request.user)

    @admin.action(
        description="Create a new key for the tenants of the selected keys", permissions=["add"]
    )
    def create_another(self, request, queryset):
        for tenant in {key.tenant for key in queryset.select_related("tenant")}:
            key, raw = api_key_create(tenant=tenant, name="admin", actor=request.user)
            self.log_addition(request, key, "Created for the tenant of a selected key")
            self.show_once(request, key, raw)
