"""Operator admin of deferral requests (docs/rules/fleet.md, "Maintenance windows"): tenants
ask through the API; the operator grants (the window moves) or denies with a note, and the
decision records who. Imported by the last line of `leasing/admin.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from common.admin import action_form_page, run_per_row

from . import maintenance
from .models import MaintenanceDeferral

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class DenyForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why (the tenant sees it).",
    )


@admin.register(MaintenanceDeferral)
class MaintenanceDeferralAdmin(admin.ModelAdmin):
    list_display = (
        "window",
        "tenant",
        "requested_at",
        "current_start",
        "requested_start",
        "status",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status", "tenant", "window__kind")
    search_fields = ("window__title", "tenant__name", "reason")
    list_select_related = ("window", "tenant", "decided_by")
    readonly_fields = (
        "window",
        "tenant",
        "requested_at",
        "requested_start",
        "reason",
        "status",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    actions = ["grant_selected", "deny_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants ask through the API

    @admin.display(description="window starts", ordering="window__starts_at")
    def current_start(self, obj: MaintenanceDeferral) -> str:
        return f"{obj.window.starts_at:%Y-%m-%d %H:%M} UTC"

    @admin.action(description="Grant selected requests (move the window)", permissions=["change"])
    def grant_selected(self, request: HttpRequest, queryset) -> None:
        now = timezone.now()
        run_per_row(
            self,
            request,
            queryset,
            "Granted",
            lambda d: maintenance.deferral_grant(
                deferral=d, actor=cast("User", request.user), now=now
            ),
        )

    @admin.action(description="Deny selected requests…", permissions=["change"])
    def deny_selected(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        form = DenyForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            now = timezone.now()
            run_per_row(
                self,
                request,
                queryset,
                "Denied",
                lambda d: maintenance.deferral_deny(
                    deferral=d,
                    actor=cast("User", request.user),
                    note=form.cleaned_data["note"],
                    now=now,
                ),
            )
            return None
        return action_form_page(
            self,
            request,
            queryset.select_related("window", "tenant"),
            action="deny_selected",
            title="Deny deferral requests",
            template="admin/leasing/maintenancedeferral/deny.html",
            form=form if form.is_bound else DenyForm(),
        )
