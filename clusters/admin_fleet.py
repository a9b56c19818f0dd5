"""Operator admin of incidents, monitoring sources and health events (docs/rules/fleet.md).

Imported from the end of `clusters/admin.py` (the admin autodiscovers `clusters.admin` only).
Every write goes through a service with the operator recorded: an incident is opened by the
add form (`clusters.fleet.incident_open`, source `operator`, `opened_by` the operator) and
resolved by a two-step action asking for the resolution (`incident_resolve`, `resolved_by`);
nothing about an incident is edited or deleted by hand. A monitoring source's key is shown
once when it is created and can be revoked; health events are read only (monitoring writes
them).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from common.admin import ReadOnlyAdmin, action_form_page, record_change, run_per_row

from . import fleet
from .choices import IncidentSource, IncidentStatus, Severity
from .ingest import monitoring_source_create, monitoring_source_revoke
from .models import HealthEvent, Incident, MonitoringSource


class IncidentOpenForm(forms.ModelForm):
    """What an operator states when opening an incident; the rest is the service's."""

    severity = forms.ChoiceField(
        choices=[(Severity.DOWN, "Down"), (Severity.DEGRADED, "Degraded")],
        initial=Severity.DOWN,
    )

    class Meta:
        model = Incident
        fields = ["node", "category", "severity", "description", "evidence"]


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What was found and done (the tenant who reported it reads this).",
    )


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = [
        "incident",
        "cluster",
        "severity",
        "source",
        "status",
        "opened_at",
        "age",
        "resolved_at",
    ]
    list_filter = [
        "status",
        "category",
        "source",
        "severity",
        ("node__cluster", admin.RelatedOnlyFieldListFilter),
        ("node__cluster__site", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["node__hostname"]
    list_select_related = ["node__cluster__site"]
    raw_id_fields = ["node"]
    date_hierarchy = "opened_at"
    ordering = ["status", "-opened_at"]  # open first ("open" < "resolved")
    actions = ["resolve_selected"]
    readonly_fields = [
        "node",
        "category",
        "severity",
        "source",
        "status",
        "opened_at",
        "resolved_at",
        "description",
        "evidence",
        "reporter",
        "opened_by",
        "resolved_by",
        "resolution",
    ]

    @admin.display(description="incident", ordering="node__hostname")
    def incident(self, obj: Incident) -> str:
        """What and where: the row's link (cluster and times have their columns)."""
        return f"{obj.get_category_display()} on {obj.node.hostname}"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = IncidentOpenForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None):
        if obj is None:
            return IncidentOpenForm.Meta.fields
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the history of a node is kept

    def save_model(self, request: HttpRequest, obj: Incident, form, change: bool) -> None:
        if change:
            return  # nothing is edited by hand: resolve with the action
        incident = fleet.incident_open(
            node=obj.node,
            category=obj.category,
            severity=form.cleaned_data["severity"],
            source=IncidentSource.OPERATOR,
            description=obj.description,
            evidence=obj.evidence or {},
            reporter=str(request.user),
            actor=cast(User, request.user),
            now=timezone.now(),
        )
        obj.pk = incident.pk
        obj.__dict__.update(
            {f.attname: getattr(incident, f.attname) for f in incident._meta.fields}
        )

    @admin.display(description="cluster", ordering="node__cluster__name")
    def cluster(self, obj: Incident) -> str:
        return str(obj.node.cluster)

    @admin.display(description="open for")
    def age(self, obj: Incident) -> str:
        end = obj.resolved_at or timezone.now()
        hours = (end - obj.opened_at).total_seconds() / 3600
        return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} d"

    @admin.action(description="Resolve selected open incidents…", permissions=["change"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Incident]):
        """Two steps: a form asking what was found and done, then each resolution as the
        logged-in operator, at the same instant."""
        form = ResolveForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            now = timezone.now()
            run_per_row(
                self,
                request,
                queryset,
                "Resolved",
                lambda obj: fleet.incident_resolve(
                    incident=obj,
                    resolution=form.cleaned_data["resolution"],
                    actor=cast(User, request.user),
                    now=now,
                ),
            )
            return None
        return action_form_page(
            self,
            request,
            queryset.select_related("node__cluster"),
            action="resolve_selected",
            title="Resolve incidents",
            template="admin/clusters/incident/resolve.html",
            form=form if form.is_bound else ResolveForm(),
            open_count=queryset.filter(status=IncidentStatus.OPEN).count(),
        )


@admin.register(MonitoringSource)
class MonitoringSourceAdmin(admin.ModelAdmin):
    """Sources are created here by superusers (the key is shown once, in a message) or with
    `manage.py create_monitoring_source`, and revoked; the hash is never shown."""

    list_display = ["name", "prefix", "created_at", "created_by", "revoked_at", "last_used_at"]
    readonly_fields = ["prefix", "created_at", "created_by", "revoked_at", "last_used_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None):
        return ["name"] if obj is None else ["name", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return [] if obj is None else ["name", *self.readonly_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its events name it

    def save_model(self, request: HttpRequest, obj: MonitoringSource, form, change: bool) -> None:
        if change:
            return
        source, raw = monitoring_source_create(name=obj.name, actor=cast(User, request.user))
        obj.pk = source.pk
        obj.__dict__.update({f.attname: getattr(source, f.attname) for f in source._meta.fields})
        self.message_user(
            request,
            f"Ingestion key for {source.name}: {raw} — copy it now, it is not stored and will "
            "not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected sources' keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[MonitoringSource]) -> None:
        for source in queryset:
            monitoring_source_revoke(source=source, actor=cast(User, request.user))
        record_change(request.user, queryset, "Revoked")
        self.message_user(request, f"Revoked {queryset.count()} source(s).", messages.SUCCESS)


@admin.register(HealthEvent)
class HealthEventAdmin(ReadOnlyAdmin):
    list_display = [
        "observed_at",
        "node",
        "severity",
        "category",
        "message",
        "source",
        "event_id",
        "incident",
        "received_at",
    ]
    list_filter = ["severity", "category", "source"]
    search_fields = ["node__hostname", "event_id"]
    list_select_related = ["node", "source", "incident"]
    date_hierarchy = "observed_at"
    show_full_result_count = False  # millions of rows: no COUNT(*) per page
