"""Operator admin for the tenant API keys (create shows the key once, revoke).

Imported from `leasing/admin.py` (the admin autodiscovers `leasing.admin` only). Every change
goes through a service (`leasing.api_keys`).
"""

from __future__ import annotations

from django.contrib import admin, messages

from common.admin import record_change
from leasing.api_keys import api_key_create, api_key_revoke
from leasing.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
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
    fields = ["tenant", "name", "expires_at"]
    readonly_fields = ["prefix", "created_at", "created_by", "revoked_at", "last_used_at"]
    actions = ["revoke", "create_another"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tenant", "name", "expires_at"]
        return ["tenant", "name", "expires_at", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["tenant", "name", "expires_at", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change:
            return  # keys are immutable; revoke and create another instead
        key, raw = api_key_create(
            tenant=obj.tenant, name=obj.name, expires_at=obj.expires_at, actor=request.user
        )
        obj.pk = key.pk
        obj.__dict__.update({f.attname: getattr(key, f.attname) for f in key._meta.fields})
        self._show_once(request, key, raw)

    def _show_once(self, request, key, raw: str) -> None:
        self.message_user(
            request,
            f"New API key for {key.tenant}: {raw} — copy it now, it is not stored and will not "
            "be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key, actor=request.user)
        record_change(request.user, queryset, "Revoked")
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)

    @admin.action(
        description="Create a new key for the tenants of the selected keys", permissions=["add"]
    )
    def create_another(self, request, queryset):
        for tenant in {key.tenant for key in queryset.select_related("tenant")}:
            key, raw = api_key_create(tenant=tenant, name="admin", actor=request.user)
            self.log_addition(request, key, "Created for the tenant of a selected key")
            self._show_once(request, key, raw)
