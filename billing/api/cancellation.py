"""`POST /api/v1/leases/{id}/lines/{line_id}/cancel-late-delivery/` (tenant API): cancel a line
delivered late and get everything invoiced for it back as credit (docs/rules/fleet.md, "Rent
follows accepted nodes"; docs/api.md). It lives in billing because it issues credit notes.

`Idempotency-Key` is honoured like every tenant POST: a retry with the same key replays the
first answer (the 200, or the 409 that refused it). Another tenant's lease or a line not of
that lease is a 404; a line the rule does not allow is a 409 naming why.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from billing import cancellation
from common.api.fields import StrictCharField
from common.api.serializers import StrictInputSerializer
from leasing.api import selectors as lease_selectors
from leasing.api.idempotency import run_idempotent
from leasing.api.schema import IDEMPOTENCY_KEY, errors
from leasing.api.serializers import InstantField, Money
from leasing.api.views import TenantAPIMixin
from leasing.choices import Party
from leasing.models import LeaseLine


class CancelLateDeliveryInputSerializer(StrictInputSerializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=500)


class CancellationNoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    invoice = serializers.IntegerField(help_text="The invoice credited (id).")
    total = Money()


class LateDeliveryCancellationSerializer(serializers.Serializer):
    lease = serializers.IntegerField()
    lease_number = serializers.CharField()
    line = serializers.IntegerField()
    at = InstantField(help_text="When the line was cancelled: acceptance was measured then.")
    opens_at = InstantField(help_text="Day 30: commencement + 30 days of the contract zone.")
    accepted_nodes = serializers.IntegerField()
    node_count = serializers.IntegerField()
    currency = serializers.CharField()
    credited = Money(help_text="Everything invoiced for the line not credited before.")
    credit_notes = CancellationNoteSerializer(many=True)


REFUSALS = (
    "409: `line_cancellation_not_yet` (before day 30: `extra.opens_at`), `line_delivered` "
    "(95 % or more of the nodes accepted: `extra.accepted_nodes`, `extra.node_count`), "
    "`line_already_cancelled`, `line_not_open` (ended, or the lease not running)."
)


class CancelLateDeliveryView(TenantAPIMixin, generics.GenericAPIView):
    serializer_class = CancelLateDeliveryInputSerializer

    @extend_schema(
        operation_id="leases_lines_cancel_late_delivery",
        summary="Cancel a line delivered late",
        description="A line with fewer than 95 % of its nodes accepted 30 days after "
        "commencement (day 30 counted in the lease's contract zone; acceptance measured at "
        "the request) may be cancelled: it becomes `cancelled` at no charge, its nodes are "
        "freed now, and everything invoiced for it comes back as credit notes of kind "
        "`cancellation`, one per invoice (applied to the invoice's balance, any excess to "
        "your credit). Webhook `line.cancelled_late_delivery`. " + REFUSALS,
        parameters=[IDEMPOTENCY_KEY],
        request=CancelLateDeliveryInputSerializer,
        responses={200: LateDeliveryCancellationSerializer, **errors(400, 404, 409, 413, 415, 422)},
    )
    def post(self, request, pk: int, line_id: int):
        tenant = self.tenant
        lease = get_object_or_404(lease_selectors.lease_list_for_tenant(tenant), pk=pk)
        get_object_or_404(LeaseLine.objects.filter(lease=lease), pk=line_id)
        data = CancelLateDeliveryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)

        def execute() -> Response:
            outcome = cancellation.line_cancel_for_late_delivery(
                lease_id=lease.pk,
                line_id=line_id,
                party=Party.TENANT,
                now=timezone.now(),
                reason=data.validated_data.get("reason", ""),
            )
            figures = outcome.figures
            body = {
                "lease": lease.pk,
                "lease_number": lease.number,
                "line": line_id,
                "at": figures.at,
                "opens_at": figures.opens_at,
                "accepted_nodes": figures.accepted,
                "node_count": figures.nodes,
                "currency": lease.currency,
                "credited": outcome.total,
                "credit_notes": [
                    {"id": n.pk, "number": n.number, "invoice": n.invoice_id, "total": n.total}
                    for n in outcome.notes
                ],
            }
            return Response(LateDeliveryCancellationSerializer(body).data)

        return run_idempotent(request, tenant, execute, self.render_error)
