"""Maintenance windows in the tenant API (docs/api.md, "Maintenance windows").

`GET /api/v1/maintenance-windows/` lists the windows touching the tenant's nodes (held during
the window, `leasing.maintenance.windows_for_tenant`), each with how many of its nodes the
window takes and the state of its own deferral request; `GET …/{id}/` one of them;
`POST …/{id}/request-deferral/` asks for a later start (`Idempotency-Key`). Any other window is
a 404. Routed by `config/api_urls.py`.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status, viewsets
from rest_framework.response import Response

from clusters import fleet
from clusters.choices import (
    MaintenanceCategory,
    MaintenanceKind,
    MaintenanceScope,
    MaintenanceStatus,
)
from clusters.models import MaintenanceWindow
from common.api.fields import AwareDateTimeField, StrictCharField
from common.api.serializers import StrictInputSerializer
from leasing import maintenance
from leasing.choices import DeferralStatus
from leasing.models import MaintenanceDeferral

from .filters import InstantFilter, StrictFilterSet
from .idempotency import run_idempotent
from .schema import IDEMPOTENCY_KEY, errors
from .serializers import InstantField
from .views import TenantAPIMixin

# --- filters and serializers --------------------------------------------------------------------


class MaintenanceWindowFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=MaintenanceStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    kind = django_filters.ChoiceFilter(choices=MaintenanceKind.choices)
    starts_at__gte = InstantFilter(field_name="starts_at", lookup_expr="gte")
    starts_at__lt = InstantFilter(field_name="starts_at", lookup_expr="lt")
    ends_at__gte = InstantFilter(field_name="ends_at", lookup_expr="gte")
    ends_at__lt = InstantFilter(field_name="ends_at", lookup_expr="lt")

    class Meta(StrictFilterSet.Meta):
        model = MaintenanceWindow
        fields: list[str] = []


class DeferralSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DeferralStatus.choices)
    requested_at = InstantField()
    requested_start = InstantField()
    reason = serializers.CharField()
    decided_at = InstantField(allow_null=True)
    decision_note = serializers.CharField()


class MaintenanceWindowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    scope = serializers.ChoiceField(choices=MaintenanceScope.choices)
    scope_name = serializers.SerializerMethodField(
        help_text="The campus or cluster named by the scope; empty for chosen nodes."
    )
    category = serializers.ChoiceField(choices=MaintenanceCategory.choices)
    kind = serializers.ChoiceField(choices=MaintenanceKind.choices)
    counts_as_planned = serializers.SerializerMethodField(
        help_text="Planned and announced at least 7 days before its start."
    )
    status = serializers.ChoiceField(choices=MaintenanceStatus.choices)
    announced_at = InstantField()
    starts_at = InstantField()
    ends_at = InstantField()
    affected_nodes = serializers.IntegerField(
        help_text="How many of your nodes the window takes out of service."
    )
    deferral = serializers.SerializerMethodField(
        help_text="Your latest deferral request for this window, or null."
    )

    def get_scope_name(self, obj: MaintenanceWindow) -> str:
        if obj.site is not None:
            return obj.site.name
        if obj.cluster is not None:
            return f"{obj.cluster.site.name} / {obj.cluster.name}"
        return ""

    def get_counts_as_planned(self, obj: MaintenanceWindow) -> bool:
        return fleet.counts_as_planned(obj)

    @extend_schema_field(DeferralSerializer(allow_null=True))
    def get_deferral(self, obj: MaintenanceWindow) -> dict | None:
        mine = getattr(obj, "tenant_deferrals", None) or []
        return DeferralSerializer(mine[0]).data if mine else None


class DeferralInputSerializer(StrictInputSerializer):
    requested_start = AwareDateTimeField(
        help_text="The start you ask for, later than the window's current start (ISO 8601 "
        "with an offset). Granted, the window moves by the same shift, its end included."
    )
    reason = StrictCharField(required=False, allow_blank=True, max_length=1000)


def windows_for(tenant):
    """The tenant's windows with its own deferral requests, latest first (one query more)."""
    return maintenance.windows_for_tenant(tenant, now=timezone.now()).prefetch_related(
        Prefetch(
            "deferrals",
            queryset=MaintenanceDeferral.objects.filter(tenant=tenant).order_by(
                "-requested_at", "-id"
            ),
            to_attr="tenant_deferrals",
        )
    )


# --- views --------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Maintenance windows touching your nodes",
        description="Every window (any status) whose scope includes a node you hold during "
        "it, with how many of your nodes it takes and your deferral request.",
        responses={200: MaintenanceWindowSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One maintenance window",
        responses={200: MaintenanceWindowSerializer, **errors(404)},
    ),
)
class MaintenanceWindowViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilter
    ordering_fields = ["id", "starts_at"]
    ordering = ["-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MaintenanceWindow.objects.none()
        return windows_for(self.tenant)


class RequestDeferralView(TenantAPIMixin, generics.GenericAPIView):
    serializer_class = DeferralInputSerializer

    @extend_schema(
        summary="Ask for a maintenance window to start later",
        description="One open request per window and tenant; the operator grants it (the "
        "window moves, `maintenance.changed`) or denies it with a note. Only a scheduled "
        "window may be deferred (409 `deferral_not_allowed`); a second open request is 409 "
        "`deferral_already_requested`; a start not later than the current one is 400.",
        parameters=[IDEMPOTENCY_KEY],
        request=DeferralInputSerializer,
        responses={201: MaintenanceWindowSerializer, **errors(400, 404, 409, 413, 415, 422)},
    )
    def post(self, request, pk: int):
        tenant = self.tenant
        window = get_object_or_404(windows_for(tenant), pk=pk)
        serializer = DeferralInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def execute() -> Response:
            maintenance.deferral_request(
                window=window,
                tenant=tenant,
                requested_start=data["requested_start"],
                reason=data.get("reason", ""),
            )
            body = MaintenanceWindowSerializer(
                windows_for(tenant).get(pk=window.pk), context=self.get_serializer_context()
            ).data
            return Response(body, status=status.HTTP_201_CREATED)

        return run_idempotent(request, tenant, execute, self.render_error)


windows = MaintenanceWindowViewSet

urlpatterns = [
    path(
        "maintenance-windows/",
        windows.as_view({"get": "list"}),
        name="maintenance-window-list",
    ),
    path(
        "maintenance-windows/<int:pk>/",
        windows.as_view({"get": "retrieve"}),
        name="maintenance-window-detail",
    ),
    path(
        "maintenance-windows/<int:pk>/request-deferral/",
        RequestDeferralView.as_view(),
        name="maintenance-window-request-deferral",
    ),
]
