"""The tenant API of hand-over: acceptance records, and the nodes of a lease with their health,
acceptance, open incident and next maintenance window (docs/api.md, "Fleet").

Every queryset starts from the calling tenant's leases, so another tenant's id is a 404. A page
of nodes costs the same number of queries whatever its size: the allocations with their latest
acceptance record in one query, then the open incidents and the windows of the page's nodes in
one query each (plus one for node-scoped windows' members).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, mixins, serializers, viewsets

from clusters.choices import (
    IncidentCategory,
    IncidentStatus,
    MaintenanceScope,
    MaintenanceStatus,
    NodeStatus,
)
from clusters.fleet import windows_of_nodes
from clusters.models import Incident, MaintenanceWindow
from leasing import acceptance
from leasing.models import AcceptanceRecord, Allocation, Tenant

from . import selectors
from .filters import IdFilter, StrictFilterSet
from .schema import errors
from .serializers import InstantField, _now
from .views import TenantAPIMixin

# --- reads --------------------------------------------------------------------------------------


def acceptance_records_for_tenant(tenant: Tenant) -> QuerySet[AcceptanceRecord]:
    """Acceptance records of the tenant's leases, with what a row shows."""
    return AcceptanceRecord.objects.filter(allocation__line__lease__tenant=tenant).select_related(
        "node__cluster", "allocation__line__lease", "signed_by"
    )


def lease_nodes(lease_id: int) -> QuerySet[Allocation]:
    """A lease's nodes (its allocations not replaced by a spare), each with its latest record."""
    return (
        acceptance.line_allocations()
        .filter(line__lease_id=lease_id)
        .select_related("node__cluster__site", "line")
    )


HEALTH = {
    NodeStatus.ACTIVE: "ok",
    NodeStatus.DEGRADED: "degraded",
    NodeStatus.DOWN: "down",
    NodeStatus.MAINTENANCE: "maintenance",
}
HEALTH_CHOICES = ("ok", "degraded", "down", "maintenance")


def fleet_state(allocations: list[Allocation], now: dt.datetime) -> dict[str, dict[int, Any]]:
    """For a page of allocations: each node's open incident (the earliest) and next maintenance
    window (in progress, or the earliest scheduled to end after `now`). Three queries."""
    node_ids = {a.node_id for a in allocations}
    incidents: dict[int, Incident] = {}
    for incident in Incident.objects.filter(
        node_id__in=node_ids, status=IncidentStatus.OPEN
    ).order_by("opened_at", "id"):
        incidents.setdefault(incident.node_id, incident)
    windows = list(
        windows_of_nodes(node_ids)
        .filter(
            status__in=(MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS),
            ends_at__gt=now,
        )
        .order_by("starts_at", "id")
    )
    members: dict[int, set[int]] = {}
    node_scoped = [w.pk for w in windows if w.scope == MaintenanceScope.NODES]
    if node_scoped:
        through = MaintenanceWindow.nodes.through.objects.filter(
            maintenancewindow_id__in=node_scoped, node_id__in=node_ids
        )
        for window_id, node_id in through.values_list("maintenancewindow_id", "node_id"):
            members.setdefault(window_id, set()).add(node_id)
    nexts: dict[int, MaintenanceWindow] = {}
    for allocation in allocations:
        node = allocation.node
        for window in windows:  # earliest start first
            touches = (
                (window.scope == MaintenanceScope.NODES and node.pk in members.get(window.pk, ()))
                or (
                    window.scope == MaintenanceScope.CLUSTER
                    and window.cluster_id == node.cluster_id
                )
                or (
                    window.scope == MaintenanceScope.SITE and window.site_id == node.cluster.site_id
                )
            )
            if touches:
                nexts.setdefault(node.pk, window)
                break
    return {"incidents": incidents, "windows": nexts}


# --- serializers --------------------------------------------------------------------------------


class AcceptanceTestSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=acceptance.thresholds.TEST_NAMES)
    measured = serializers.FloatField()
    threshold = serializers.FloatField(help_text="From the performance model's prediction.")
    predicted = serializers.FloatField(
        required=False,
        help_text="The model's prediction for the node group (bus bandwidth, step time).",
    )
    size_bytes = serializers.IntegerField(
        required=False, help_text="Message size the bus bandwidth was measured at."
    )
    unit = serializers.CharField()
    rule = serializers.ChoiceField(
        choices=acceptance.thresholds.RULES,
        help_text="The measured value must be `rule` the threshold.",
    )
    passed = serializers.BooleanField()


class AcceptanceRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lease = serializers.IntegerField(source="allocation.line.lease_id")
    lease_number = serializers.CharField(source="allocation.line.lease.number")
    line = serializers.IntegerField(source="allocation.line_id")
    node = serializers.IntegerField(source="node_id")
    hostname = serializers.CharField(source="node.hostname")
    batch = serializers.CharField(help_text="Phase of a phased hand-over (a rack); may be empty.")
    tests = AcceptanceTestSerializer(many=True)
    passed = serializers.BooleanField()
    source = serializers.ChoiceField(choices=acceptance.SOURCES)  # type: ignore[assignment]
    signed_by = serializers.SerializerMethodField(help_text="Who signed for the operator.")
    signed_at = InstantField()
    incident = serializers.IntegerField(
        source="incident_id", allow_null=True, help_text="The incident a failed record opened."
    )

    def get_signed_by(self, obj) -> str:
        user = obj.signed_by
        if user is None:
            return ""
        return user.get_full_name() or user.get_username()


class AcceptanceRecordDetailSerializer(AcceptanceRecordSerializer):
    raw = serializers.CharField(help_text="The tool output as imported (may be empty).")


class NodeAcceptanceSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=acceptance.AcceptanceState.ALL)
    at = InstantField(
        allow_null=True, help_text="Accepted: when; failed: when the failing record was signed."
    )
    record = serializers.IntegerField(allow_null=True, help_text="The latest record's id.")


class NodeIncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    category = serializers.ChoiceField(choices=IncidentCategory.choices)
    opened_at = InstantField()


class NodeWindowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    starts_at = InstantField()
    ends_at = InstantField()


class LeaseNodeSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="node_id")
    hostname = serializers.CharField(source="node.hostname")
    cluster = serializers.CharField(source="node.cluster.slug")
    line = serializers.IntegerField(source="line_id")
    starts_at = InstantField(help_text="The node's allocation to the line.")
    ends_at = InstantField()
    health = serializers.SerializerMethodField()
    acceptance = serializers.SerializerMethodField()
    open_incident = serializers.SerializerMethodField()
    next_maintenance = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=HEALTH_CHOICES))
    def get_health(self, obj) -> str:
        return HEALTH.get(obj.node.status, "ok")

    @extend_schema_field(NodeAcceptanceSerializer)
    def get_acceptance(self, obj) -> dict[str, Any]:
        state = acceptance.acceptance_state(obj)
        at = obj.accepted_at if state == acceptance.AcceptanceState.ACCEPTED else obj.acc_at
        if state == acceptance.AcceptanceState.PENDING:
            at = None
        return NodeAcceptanceSerializer({"status": state, "at": at, "record": obj.acc_record}).data

    @extend_schema_field(NodeIncidentSerializer(allow_null=True))
    def get_open_incident(self, obj) -> dict[str, Any] | None:
        incident = self.context["fleet"]["incidents"].get(obj.node_id)
        return NodeIncidentSerializer(incident).data if incident is not None else None

    @extend_schema_field(NodeWindowSerializer(allow_null=True))
    def get_next_maintenance(self, obj) -> dict[str, Any] | None:
        window = self.context["fleet"]["windows"].get(obj.node_id)
        return NodeWindowSerializer(window).data if window is not None else None


# --- views --------------------------------------------------------------------------------------


class AcceptanceRecordFilter(StrictFilterSet):
    lease = IdFilter(field_name="allocation__line__lease_id", help_text="A lease id.")
    node = IdFilter(field_name="node_id", help_text="A node id.")

    class Meta(StrictFilterSet.Meta):
        model = AcceptanceRecord
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(
        summary="Acceptance records of your nodes",
        description="How each node of your leases was checked before hand-over: the tests, "
        "measured values and thresholds derived from the performance model, the verdict, who "
        "signed and when. Newest first.",
        responses={200: AcceptanceRecordSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One acceptance record, with the tool output",
        responses={200: AcceptanceRecordDetailSerializer, **errors(404)},
    ),
)
class AcceptanceRecordViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = AcceptanceRecordFilter
    ordering_fields = ["id", "signed_at"]
    ordering = ["-id"]

    def get_serializer_class(self):
        return (
            AcceptanceRecordSerializer
            if self.action == "list"
            else AcceptanceRecordDetailSerializer
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AcceptanceRecord.objects.none()
        qs = acceptance_records_for_tenant(self.tenant)
        if self.action == "list":
            qs = qs.defer("raw")
        return qs


class LeaseNodesView(TenantAPIMixin, mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = LeaseNodeSerializer
    ordering = ["id"]

    def is_list(self) -> bool:
        return True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Allocation.objects.none()
        lease = get_object_or_404(
            selectors.lease_list_for_tenant(self.tenant), pk=self.kwargs["lease_id"]
        )
        return lease_nodes(lease.pk)

    def get_serializer(self, *args, **kwargs):
        if args and isinstance(args[0], list):
            context = self.get_serializer_context()
            context["fleet"] = fleet_state(args[0], _now(context))
            kwargs["context"] = context
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        summary="The nodes of a lease",
        description="Each node the lease holds (replaced nodes give way to their spares): "
        "hostname, cluster, health (`ok`, `degraded`, `down`, `maintenance`), acceptance "
        "(`pending`, `accepted`, `failed`, with when), its open incident and its next "
        "maintenance window.",
        responses={200: LeaseNodeSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


records = AcceptanceRecordViewSet

urlpatterns = [
    path("acceptance-records/", records.as_view({"get": "list"}), name="acceptance-record-list"),
    path(
        "acceptance-records/<int:pk>/",
        records.as_view({"get": "retrieve"}),
        name="acceptance-record-detail",
    ),
    path("leases/<int:lease_id>/nodes/", LeaseNodesView.as_view(), name="lease-nodes"),
]
