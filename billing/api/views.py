"""Invoices and credit notes of the calling tenant (read-only; issued documents only)."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, viewsets
from rest_framework.response import Response

from billing import selectors as billing_selectors
from billing import statement as billing_statement
from billing.models import CreditNote, Invoice, Payment
from common.api.query import QuerySpec
from leasing.api import selectors as lease_selectors
from leasing.api.schema import errors
from leasing.api.views import TenantAPIMixin

from . import selectors
from .filters import CreditNoteFilter, InvoiceFilter
from .serializers import (
    CreditNoteDetailSerializer,
    CreditNoteSerializer,
    InvoiceDetailSerializer,
    InvoiceSerializer,
    PaymentSerializer,
    StatementQuerySerializer,
    StatementSerializer,
    TerminationQuoteQuerySerializer,
    TerminationQuoteSerializer,
)


@extend_schema_view(
    list=extend_schema(
        summary="Your invoices",
        description="Issued, paid and void invoices (drafts are internal).",
        responses={200: InvoiceSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One invoice with its lines",
        responses={200: InvoiceDetailSerializer, **errors(404)},
    ),
)
class InvoiceViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = InvoiceFilter
    ordering_fields = ["id", "period_start", "issued_at"]
    ordering = ["-id"]

    def get_serializer_class(self):
        return InvoiceSerializer if self.action == "list" else InvoiceDetailSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        if self.action == "list":
            return selectors.invoice_rows_for_tenant(self.tenant)
        return selectors.invoice_detail_for_tenant(self.tenant)


@extend_schema_view(
    list=extend_schema(
        summary="Your credit notes",
        responses={200: CreditNoteSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One credit note with its lines",
        responses={200: CreditNoteDetailSerializer, **errors(404)},
    ),
)
class CreditNoteViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = CreditNoteFilter
    ordering_fields = ["id", "issued_at"]
    ordering = ["-id"]

    def get_serializer_class(self):
        return CreditNoteSerializer if self.action == "list" else CreditNoteDetailSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CreditNote.objects.none()
        if self.action == "list":
            return selectors.credit_note_list_for_tenant(self.tenant)
        return selectors.credit_note_detail_for_tenant(self.tenant)


class TerminationQuoteView(TenantAPIMixin, generics.GenericAPIView):
    """A lease's termination quote: the lease rules' answer plus billing's money. It lives in
    billing because it reads invoices and credit notes (billing sits above leasing)."""

    serializer_class = TerminationQuoteSerializer

    def query_spec(self) -> QuerySpec:
        return QuerySpec(frozenset(TerminationQuoteQuerySerializer().fields))

    @extend_schema(
        operation_id="leases_termination_quote_retrieve",
        summary="Termination quote",
        description="What a notice of yours received on `notice_date` would do: the effective "
        "end, the outcome (`ends`, `moot`, `cancelled`) and the rent. Nothing is written.",
        parameters=[TerminationQuoteQuerySerializer],
        responses={200: TerminationQuoteSerializer, **errors(400, 404, 409)},
    )
    def get(self, request, pk: int):
        lease = get_object_or_404(lease_selectors.lease_list_for_tenant(self.tenant), pk=pk)
        query = TerminationQuoteQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        quote = billing_selectors.lease_termination_quote(lease, **query.validated_data)
        return Response(TerminationQuoteSerializer(quote).data)


@extend_schema_view(
    list=extend_schema(
        summary="Your payments",
        description="Payments received from you, how each was applied to your invoices, and "
        "what of it is unapplied. A payment reversed (recorded by mistake) shows when.",
        responses={200: PaymentSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One payment", responses={200: PaymentSerializer, **errors(404)}
    ),
)
class PaymentViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PaymentSerializer
    ordering_fields = ["id", "recorded_at"]
    ordering = ["-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        return selectors.payment_list_for_tenant(self.tenant)


class StatementView(TenantAPIMixin, generics.GenericAPIView):
    """Your account as of the end of a UTC day: balance, aging, unapplied money, and the
    running list of documents and payments."""

    serializer_class = StatementSerializer

    def query_spec(self) -> QuerySpec:
        return QuerySpec(frozenset(StatementQuerySerializer().fields))

    @extend_schema(
        operation_id="statement_retrieve",
        summary="Your statement",
        description="As of the end of `as_of` (UTC; default today): what you owe by days past "
        "due, your unapplied cash and credit, and every invoice, void, credit note, payment, "
        "reversal and refund up to then with the running balance.",
        parameters=[StatementQuerySerializer],
        responses={200: StatementSerializer, **errors(400)},
    )
    def get(self, request):
        query = StatementQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        day = query.validated_data.get("as_of") or timezone.now().astimezone(dt.UTC).date()
        found = billing_statement.statement(self.tenant, day=day)
        return Response(
            StatementSerializer(
                {
                    "as_of": found.as_of,
                    "currency": found.currency,
                    "balance": found.balance,
                    "owed": found.owed,
                    "aging": found.aging.buckets,
                    "unapplied_cash": found.aging.unapplied_cash,
                    "credit_balance": found.aging.credit_balance,
                    "documents": found.documents,
                }
            ).data
        )
