"""Invoices and credit notes of the calling tenant (read-only; issued documents only)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, viewsets
from rest_framework.response import Response

from billing import selectors as billing_selectors
from billing.models import CreditNote, Invoice
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
