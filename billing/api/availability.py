"""A lease's availability per line for one calendar month (tenant API): final once the month is
settled by the service-credits job, month-to-date before (docs/rules/fleet.md, "Availability
and service credits")."""

from __future__ import annotations

import datetime as dt
import re

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from billing import proration
from billing.service_credits import lease_availability
from common.api.query import QuerySpec
from common.api.serializers import StrictInputSerializer
from common.contract_time import local_date
from leasing.api import selectors as lease_selectors
from leasing.api.schema import errors
from leasing.api.serializers import InstantField
from leasing.api.views import TenantAPIMixin

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class AvailabilityQuerySerializer(StrictInputSerializer):
    month = serializers.CharField(
        required=False,
        max_length=7,
        help_text="YYYY-MM, a calendar month of the lease's contract zone (default: the current).",
    )

    def validate_month(self, value: str) -> dt.date:
        match = MONTH.match(value)
        if match is None or not 2000 <= int(match.group(1)) <= 2200:
            raise serializers.ValidationError("Give a month as YYYY-MM.")
        return dt.date(int(match.group(1)), int(match.group(2)), 1)


class IncidentLossSerializer(serializers.Serializer):
    useful_gpu_hours_lost = serializers.CharField(
        help_text="GPU-hours stalled × the model's useful fraction for the line's node group."
    )
    gpu_hours_stalled = serializers.CharField(
        required=False, help_text="The line's GPUs × (the incident's time + one restart)."
    )
    stalled_hours = serializers.CharField()
    gpus = serializers.IntegerField()
    useful_fraction = serializers.CharField(
        required=False,
        help_text="Share of the group's compute capacity the model's reference job turns into "
        "useful training (after stragglers, exposed communication and failures).",
    )
    restart_cost_s = serializers.CharField(
        required=False, help_text="Seconds one restart costs (checkpoint reload, redone work)."
    )
    basis = serializers.CharField()


class IncidentFigureSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    node = serializers.IntegerField()
    hostname = serializers.CharField()
    category = serializers.CharField()
    opened_at = serializers.CharField()
    resolved_at = serializers.CharField(allow_null=True)
    minutes = serializers.CharField(help_text="Node-minutes it covered in service this month.")
    compute_lost = IncidentLossSerializer(
        allow_null=True,
        help_text="The performance model's estimate if the line ran one synchronous job "
        "(information, not the credit basis).",
    )


class WindowFigureSerializer(serializers.Serializer):
    window = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    late = serializers.BooleanField(help_text="Emergency, or announced under 7 days ahead.")
    announced_at = serializers.CharField()
    starts_at = serializers.CharField()
    ends_at = serializers.CharField()
    nodes = serializers.IntegerField()
    minutes = serializers.CharField()
    counted_minutes = serializers.CharField(help_text="Of which downtime.")


class LineAvailabilitySerializer(serializers.Serializer):
    line = serializers.IntegerField()
    cluster = serializers.CharField()
    nodes = serializers.IntegerField()
    in_service_minutes = serializers.CharField(help_text="In-service node-minutes.")
    downtime_minutes = serializers.CharField(help_text="Downtime node-minutes.")
    incident_minutes = serializers.CharField()
    maintenance_minutes = serializers.CharField()
    availability = serializers.CharField(help_text="Percent, 4 decimals.")
    tier = serializers.CharField(help_text="Percent of the month rent the tier credits.")
    month_rent = serializers.CharField()
    credit = serializers.CharField()
    final = serializers.BooleanField()
    incidents = IncidentFigureSerializer(many=True)
    windows = WindowFigureSerializer(many=True)


class AvailabilitySerializer(serializers.Serializer):
    lease = serializers.IntegerField()
    month = serializers.CharField()
    final = serializers.BooleanField(
        help_text="True once the month is settled (its service credit, if any, issued)."
    )
    as_of = InstantField()
    credit_note = serializers.IntegerField(allow_null=True)
    lines = LineAvailabilitySerializer(many=True)


class LeaseAvailabilityView(TenantAPIMixin, generics.GenericAPIView):
    serializer_class = AvailabilitySerializer

    def query_spec(self) -> QuerySpec:
        return QuerySpec(frozenset(AvailabilityQuerySerializer().fields))

    @extend_schema(
        operation_id="leases_availability_retrieve",
        summary="Availability per line for a month",
        description="In-service and downtime node-minutes, availability, month rent and service "
        "credit of each line; month-to-date until the month is settled.",
        parameters=[AvailabilityQuerySerializer],
        responses={200: AvailabilitySerializer, **errors(400, 404)},
    )
    def get(self, request, pk: int):
        lease = get_object_or_404(lease_selectors.lease_list_for_tenant(self.tenant), pk=pk)
        query = AvailabilityQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        now = timezone.now()
        period = query.validated_data.get("month") or proration.month_start(
            local_date(now, lease.contract_timezone)
        )
        figures = lease_availability(lease, period, now=now)
        return Response(
            AvailabilitySerializer({**figures, "lease": lease.pk, "month": f"{period:%Y-%m}"}).data
        )
