"""The operator payments API (`/api/ops/v1/`), for a finance system: thin views over the
services the admin and `manage.py record_payment` use (`billing.payments`).

Authenticated by an operator key (`common.api.operator`): the request acts as the key's staff
user, whose Django permissions each operation checks and who is recorded as the actor. Every
POST honours `Idempotency-Key` (kept per user, `leasing.api.idempotency`): a retried request
replays the first response and records nothing twice. A refused request writes nothing (each
service is one transaction).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing import payments
from billing.models import Invoice, Payment, Refund
from common.api.operator import (
    HasOperatorPermissions,
    OperatorKeyAuthentication,
    OperatorKeyRateThrottle,
)
from common.api.serializers import ErrorSerializer
from common.exceptions import DomainError
from leasing.api.idempotency import run_idempotent
from leasing.api.schema import IDEMPOTENCY_KEY
from leasing.api.views import TenantAPIMixin
from leasing.models import Tenant

from .filters import PaymentFilter, RefundFilter
from .serializers import (
    OperatorPaymentSerializer,
    PaymentInputSerializer,
    RefundInputSerializer,
    RefundSerializer,
    ReverseInputSerializer,
)


class UnknownTenant(DomainError):
    code = "unknown_tenant"
    http_status = 422
    default_message = "No tenant with this slug."


ERROR_TEXT = {
    400: "Invalid input (`validation_error`, `extra.fields` names each field: a missing or "
    "unknown field; an amount that is not a decimal string, not positive or finer than the "
    "cent; a future value date; an empty reference or reason; an invoice named twice) or a "
    "malformed body (`malformed_request`).",
    401: "No, malformed, unknown, revoked or expired operator key, or its user is no longer "
    "active staff (`not_authenticated`, `authentication_failed`). Tenant and monitoring keys "
    "are refused.",
    403: "The key's user lacks the operation's permissions (`permission_denied`).",
    404: "No such payment (`not_found`).",
    409: "A rule refused it now: `invoice_not_open` (an application names an invoice of "
    "another tenant, a draft or a void), `payment_reversed`, `payment_refunded`, "
    "`nothing_unapplied`, `idempotency_in_progress`.",
    413: "Body larger than the server takes (`request_too_large`).",
    415: "Body is not JSON (`unsupported_media_type`).",
    422: "`unknown_tenant`; `currency_mismatch` (the tenant is not billed in it, or an "
    "application names an invoice in another currency); `over_application` (the "
    "applications add up to more than the payment, or one is more than its invoice owes); "
    "`idempotency_key_reused` (the same key with a different request).",
    429: "Too many requests for this key, or too many refused keys from this address "
    "(`throttled`); see Retry-After.",
    503: "The database is unavailable; retry (`service_unavailable`).",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_TEXT[code])
        for code in sorted({401, 403, 429, 503, *codes})
    }


class OperatorAPIMixin(TenantAPIMixin):
    """The tenant API's parsing, pages and error rendering, with an operator key instead of
    a tenant key: each action needs the Django permissions in `operator_permissions`."""

    authentication_classes = [OperatorKeyAuthentication]
    permission_classes = [HasOperatorPermissions]
    operator_permissions: dict[str, tuple[str, ...]] = {}

    @property
    def throttle_classes(self):
        return [OperatorKeyRateThrottle]

    def valid(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise UnknownTenant(extra={"tenant": slug})
    return tenant


def _payment_rows() -> QuerySet[Payment]:
    return Payment.objects.select_related(
        "tenant", "recorded_by", "reversal", "reversal__reversed_by"
    ).prefetch_related("applications__invoice", "refunds")


@extend_schema_view(
    list=extend_schema(
        summary="Payments",
        description="Every tenant's payments, newest first, with how each was applied, what "
        "of it is unapplied, who recorded it and its reversal.",
        responses={200: OperatorPaymentSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One payment", responses={200: OperatorPaymentSerializer, **errors(404)}
    ),
)
class PaymentViewSet(OperatorAPIMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = OperatorPaymentSerializer
    filterset_class = PaymentFilter
    ordering_fields = ["id", "recorded_at", "value_date"]
    ordering = ["-id"]
    operator_permissions = {
        "list": ("billing.view_payment",),
        "retrieve": ("billing.view_payment",),
        "create": ("billing.add_payment",),
        "reverse": ("billing.change_payment",),
    }

    def get_queryset(self):
        return _payment_rows()

    def _detail(self, pk: int, code: int) -> Response:
        payment = _payment_rows().get(pk=pk)
        return Response(OperatorPaymentSerializer(payment).data, status=code)

    @extend_schema(
        summary="Record a payment",
        description="Records the payment as the key's user and applies it: to the "
        "`applications` given (invoice numbers and amounts), or else to the tenant's open "
        "invoices due earliest first. Needs `billing.add_payment`.",
        parameters=[IDEMPOTENCY_KEY],
        request=PaymentInputSerializer,
        responses={201: OperatorPaymentSerializer, **errors(400, 409, 413, 415, 422)},
    )
    def create(self, request):
        data = self.valid(PaymentInputSerializer)
        actor = request.user

        def execute() -> Response:
            tenant = _tenant(data["tenant"])
            applications = None
            if "applications" in data:
                numbers = [a["invoice"] for a in data["applications"]]
                ids = dict(
                    Invoice.objects.filter(tenant=tenant, number__in=numbers).values_list(
                        "number", "pk"
                    )
                )
                missing = [n for n in numbers if n not in ids]
                if missing:
                    raise payments.InvoiceNotOpen(extra={"invoices": missing})
                applications = [(ids[a["invoice"]], a["amount"]) for a in data["applications"]]
            payment = payments.payment_record(
                tenant=tenant,
                amount=data["amount"],
                currency=data["currency"],
                value_date=data["value_date"],
                reference=data["reference"],
                method=data["method"],
                applications=applications,
                actor=actor,
            )
            return self._detail(payment.pk, status.HTTP_201_CREATED)

        return run_idempotent(request, actor, execute, self.render_error)

    @extend_schema(
        summary="Reverse a payment",
        description="Undoes a payment recorded by mistake: its applications are taken back "
        "(the invoices reopen) and the reversal records the key's user and the reason. "
        "Refused once reversed or after part of it was refunded. Needs "
        "`billing.change_payment`.",
        parameters=[IDEMPOTENCY_KEY],
        request=ReverseInputSerializer,
        responses={200: OperatorPaymentSerializer, **errors(400, 404, 409, 413, 415, 422)},
    )
    @action(detail=True, methods=["post"])
    def reverse(self, request, pk=None):
        payment = get_object_or_404(Payment, pk=pk)
        data = self.valid(ReverseInputSerializer)
        actor = request.user

        def execute() -> Response:
            payments.payment_reverse(payment=payment, reason=data["reason"], actor=actor)
            return self._detail(payment.pk, status.HTTP_200_OK)

        return run_idempotent(request, actor, execute, self.render_error)


@extend_schema_view(
    list=extend_schema(
        summary="Refunds",
        description="Every tenant's refunds, newest first, with the payment or credit note "
        "each drew on and who recorded it.",
        responses={200: RefundSerializer(many=True), **errors(400)},
    ),
)
class RefundViewSet(OperatorAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RefundSerializer
    filterset_class = RefundFilter
    ordering_fields = ["id", "refunded_at"]
    ordering = ["-id"]
    operator_permissions = {
        "list": ("billing.view_refund",),
        "create": ("billing.add_refund",),
    }

    def get_queryset(self):
        return Refund.objects.select_related("tenant", "refunded_by")

    @extend_schema(
        summary="Refund unapplied money",
        description="Gives back the tenant's unapplied money (cash first, then credit, oldest "
        "first), recorded as the key's user. Needs `billing.add_refund`.",
        parameters=[IDEMPOTENCY_KEY],
        request=RefundInputSerializer,
        responses={201: RefundSerializer(many=True), **errors(400, 409, 413, 415, 422)},
    )
    def create(self, request):
        data = self.valid(RefundInputSerializer)
        actor = request.user

        def execute() -> Response:
            rows = payments.refund_record(
                tenant=_tenant(data["tenant"]),
                amount=data["amount"],
                reference=data["reference"],
                actor=actor,
            )
            return Response(RefundSerializer(rows, many=True).data, status=201)

        return run_idempotent(request, actor, execute, self.render_error)
