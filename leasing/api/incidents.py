"""Incidents in the tenant API (docs/api.md, "Incidents"; docs/rules/fleet.md, "Incidents").

* `POST /api/v1/incidents/` reports a node the tenant holds now, **named by its hostname**
  (what the tenant's machines call themselves and what `GET /api/v1/leases/{id}/nodes/`
  shows; node ids are internal). A node it does not hold now — another tenant's, one it held
  last month, or no node at all — is 404 `not_found`, the same answer whichever, so a report
  learns nothing about the fleet. The incident opens at once (source `tenant`), the node is
  no longer allocated anew and its status follows. `Idempotency-Key` as everywhere.
* `GET /api/v1/incidents/` and `GET /api/v1/incidents/{id}/` show the incidents of nodes the
  tenant held while the incident was open (an allocation of its leases overlaps the incident's
  `[opened_at, resolved_at)`), whoever reported them; nothing else. The free text
  (`description`, `evidence`, `resolution`) is shown only on the tenant's own reports: another
  party's words about a node (a previous holder's, the operator's, monitoring's) are not its
  business.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status
from rest_framework.response import Response

from clusters import fleet
from clusters.choices import IncidentCategory, IncidentSource, IncidentStatus, Severity
from clusters.models import Incident
from common.api.fields import BoundedJSONObjectField, StrictCharField
from common.api.serializers import StrictInputSerializer
from common.clock import resolve_now
from leasing.models import Allocation, Tenant
from leasing.selectors import held_at

from .filters import IdFilter, InstantFilter, StrictFilterSet, TextFilter
from .idempotency import run_idempotent
from .permissions import tenant_of
from .schema import IDEMPOTENCY_KEY, errors
from .serializers import InstantField
from .views import TenantAPIMixin

MAX_EVIDENCE_BYTES = 16_000
MAX_EVIDENCE_DEPTH = 4
REPORTABLE_SEVERITIES = [(Severity.DOWN, "Down"), (Severity.DEGRADED, "Degraded")]


def reporter_of(tenant: Tenant) -> str:
    """How an incident records the tenant that reported it (`Incident.reporter`)."""
    return f"tenant:{tenant.pk}"


# --- reads ------------------------------------------------------------------------------------


def _overlapping(allocations: QuerySet[Allocation]) -> Q:
    """Incidents whose open period `[opened_at, resolved_at)` meets one of `allocations` on
    the same node (a `Q` over `Incident`)."""
    same_node = allocations.filter(node=OuterRef("node_id"), ends_at__gt=OuterRef("opened_at"))
    return Q(Exists(same_node), resolved_at__isnull=True) | Q(
        Exists(same_node.filter(starts_at__lt=OuterRef("resolved_at"))),
        resolved_at__isnull=False,
    )


def incidents_for_tenant(tenant: Tenant) -> QuerySet[Incident]:
    """The incidents the tenant may see (module docstring), with their node and cluster."""
    return Incident.objects.filter(
        _overlapping(Allocation.objects.filter(line__lease__tenant=tenant))
    ).select_related("node__cluster")


def incidents_during_lease(tenant: Tenant, lease_id: int) -> Q:
    """Incidents of the nodes of the tenant's lease `lease_id` while the lease held them
    (another tenant's lease id matches nothing: its holdings are not this tenant's to probe)."""
    return _overlapping(
        Allocation.objects.filter(line__lease_id=lease_id, line__lease__tenant=tenant)
    )


# --- writes -----------------------------------------------------------------------------------


@transaction.atomic
def tenant_incident_report(
    *,
    tenant: Tenant,
    hostname: str,
    category: str,
    severity: str = Severity.DOWN,
    description: str = "",
    evidence: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Incident:
    """Open an incident on a node the tenant holds at `now` (holdover included: the machine is
    still in its hands). Any other node → `Http404` (module docstring)."""
    now = resolve_now(now)
    holding = (
        Allocation.objects.filter(held_at(now, now=now))
        .filter(line__lease__tenant=tenant, node__hostname=hostname)
        .select_related("node")
        .first()
    )
    if holding is None:
        raise Http404
    return fleet.incident_open(
        node=holding.node,
        category=category,
        severity=severity,
        source=IncidentSource.TENANT,
        description=description,
        evidence=evidence,
        reporter=reporter_of(tenant),
        now=now,
    )


# --- bodies -----------------------------------------------------------------------------------


class IncidentInputSerializer(StrictInputSerializer):
    """A report about one node you hold now."""

    node = StrictCharField(max_length=100, help_text="The node's hostname.")
    category = serializers.ChoiceField(choices=IncidentCategory.choices)
    severity = serializers.ChoiceField(
        choices=REPORTABLE_SEVERITIES,
        required=False,
        help_text="`down` (default: the node is unusable) or `degraded` (it runs, badly).",
    )
    description = StrictCharField(max_length=4000, required=False, allow_blank=True)
    evidence = BoundedJSONObjectField(
        required=False,
        max_bytes=MAX_EVIDENCE_BYTES,
        max_depth=MAX_EVIDENCE_DEPTH,
        help_text="Anything that shows it: error codes, test output, timings.",
    )


class IncidentNodeSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    cluster = serializers.CharField(source="cluster.slug")


class IncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    node = IncidentNodeSerializer()
    category = serializers.ChoiceField(choices=IncidentCategory.choices)
    severity = serializers.ChoiceField(choices=REPORTABLE_SEVERITIES)
    # A field named like Field.source: DRF takes it, the stubs do not.
    source = serializers.ChoiceField(choices=IncidentSource.choices)  # type: ignore[assignment]
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    opened_at = InstantField()
    resolved_at = InstantField(allow_null=True)
    reported_by_you = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    resolution = serializers.SerializerMethodField()

    def _mine(self, incident: Incident) -> bool:
        return incident.source == IncidentSource.TENANT and incident.reporter == reporter_of(
            self.context["tenant"]
        )

    @extend_schema_field(serializers.BooleanField())
    def get_reported_by_you(self, incident: Incident) -> bool:
        return self._mine(incident)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_description(self, incident: Incident) -> str | None:
        return incident.description if self._mine(incident) else None

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_evidence(self, incident: Incident) -> dict[str, Any] | None:
        return incident.evidence if self._mine(incident) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_resolution(self, incident: Incident) -> str | None:
        return incident.resolution if self._mine(incident) else None


# --- filters ----------------------------------------------------------------------------------


class IncidentFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=IncidentStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    category = django_filters.MultipleChoiceFilter(choices=IncidentCategory.choices)
    node = TextFilter(field_name="node__hostname", max_length=100, help_text="Hostname.")
    lease = IdFilter(method="filter_lease", help_text="Incidents while this lease held the node.")
    opened_at__gte = InstantFilter(field_name="opened_at", lookup_expr="gte")
    opened_at__lt = InstantFilter(field_name="opened_at", lookup_expr="lt")

    class Meta(StrictFilterSet.Meta):
        model = Incident
        fields: list[str] = []

    def filter_lease(self, queryset, name, value):
        return queryset.filter(incidents_during_lease(tenant_of(self.request), value))


# --- views ------------------------------------------------------------------------------------


class _IncidentScope(TenantAPIMixin):
    serializer_class = IncidentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Incident.objects.none()
        return incidents_for_tenant(self.tenant)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["tenant"] = self.tenant
        return context


class IncidentsView(_IncidentScope, mixins.ListModelMixin, generics.GenericAPIView):
    filterset_class = IncidentFilter
    ordering_fields = ["id", "opened_at"]
    ordering = ["-id"]

    def is_list(self) -> bool:
        return self.request.method == "GET"

    @extend_schema(
        summary="Incidents of your nodes",
        description="Incidents of nodes you held while they were open, whoever reported them. "
        "Description, evidence and resolution only on your own reports.",
        responses={200: IncidentSerializer(many=True), **errors(400)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        summary="Report a problem with a node you hold",
        description="Opens an incident on the node (by hostname) at once: it is taken out of "
        "new allocations and its status follows. A node you do not hold now is 404.",
        parameters=[IDEMPOTENCY_KEY],
        request=IncidentInputSerializer,
        responses={201: IncidentSerializer, **errors(400, 404, 409, 413, 415, 422)},
    )
    def post(self, request, *args, **kwargs):
        serializer = IncidentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tenant = self.tenant

        def execute() -> Response:
            incident = tenant_incident_report(
                tenant=tenant,
                hostname=data["node"],
                category=data["category"],
                severity=data.get("severity", Severity.DOWN),
                description=data.get("description", ""),
                evidence=data.get("evidence"),
                now=timezone.now(),
            )
            incident = incidents_for_tenant(tenant).get(pk=incident.pk)
            body = IncidentSerializer(incident, context=self.get_serializer_context()).data
            return Response(body, status=status.HTTP_201_CREATED)

        return run_idempotent(request, tenant, execute, self.render_error)


class IncidentDetailView(_IncidentScope, generics.RetrieveAPIView):
    @extend_schema(summary="One incident", responses={200: IncidentSerializer, **errors(404)})
    def get(self, request, *args, **kwargs):
        return self.retrieve(request, *args, **kwargs)


urlpatterns = [
    path("incidents/", IncidentsView.as_view(), name="incident-list"),
    path("incidents/<int:pk>/", IncidentDetailView.as_view(), name="incident-detail"),
]
