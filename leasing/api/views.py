"""Views of the tenant API: thin. Parse input, call a selector or a service, render.

Every queryset comes from `selectors.*_for_tenant(tenant)`, so another tenant's id is a 404.
Errors are rendered by the shared handler (`common.api.exceptions`) in one format.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import InterfaceError, OperationalError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from common.api.exceptions import api_exception_handler
from common.api.ordering import StrictOrderingFilter
from common.api.query import QuerySpec, check_query, list_spec
from common.exceptions import DomainError, InvalidInput
from leasing.models import Lease, Listing, Notice

from . import selectors, services
from .authentication import ApiKeyAuthentication
from .filters import LeaseFilter, ListingFilter, NoticeFilter
from .idempotency import run_idempotent
from .pagination import TenantCursorPagination
from .permissions import IsTenant, tenant_of
from .schema import IDEMPOTENCY_KEY, errors
from .serializers import (
    ConfirmWithdrawalInputSerializer,
    LeaseDetailSerializer,
    LeaseRequestInputSerializer,
    LeaseSerializer,
    ListingSerializer,
    NoticeInputSerializer,
    NoticeSerializer,
)

logger = logging.getLogger(__name__)

PAGINATION_PARAMS = {"cursor", "page_size"}


class DatabaseUnavailable(DomainError):
    """The database did not answer (restart, network): retry shortly. Not a client error."""

    code = "service_unavailable"
    http_status = 503
    default_message = "The service is briefly unavailable; retry."


def _normalize(exc: Exception) -> Exception:
    """A service's field errors become a validation error like the serializers' (the message
    names the fields, each field has a list of messages); a lost database becomes a 503."""
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc, exc_info=exc)
        return DatabaseUnavailable()
    if isinstance(exc, InvalidInput) and isinstance(exc.extra.get("fields"), dict):
        fields = {
            name: messages if isinstance(messages, list) else [str(messages)]
            for name, messages in exc.extra["fields"].items()
        }
        return ValidationError(fields)
    return exc


if TYPE_CHECKING:
    # The mixin only ever goes before a DRF generic view: type its hooks as that view's.
    _GenericView = generics.GenericAPIView
else:
    _GenericView = object


class TenantAPIMixin(_GenericView):
    """Authentication by API key, tenant-only permission, per-key throttling, cursor pages,
    and a query string of only the parameters the operation takes (`common.api.query`)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsTenant]
    pagination_class = TenantCursorPagination
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]

    @property
    def throttle_classes(self):
        from .throttling import ApiKeyRateThrottle

        return [ApiKeyRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticated, allowed, not throttled
        check_query(request.query_params, self.query_spec())

    def is_list(self) -> bool:
        return getattr(self, "action", None) == "list"

    def query_spec(self) -> QuerySpec:
        """The query parameters of this request's operation: a list's filters, ordering and
        pagination; none elsewhere unless a view says so."""
        return list_spec(self) if self.is_list() else QuerySpec()

    def handle_exception(self, exc):
        exc = _normalize(exc)
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            response["Retry-After"] = "1"
        return response

    def render_error(self, exc: Exception) -> Response:
        response = api_exception_handler(_normalize(exc), self.get_exception_handler_context())
        if response is None:  # not an API error: let it propagate as the bug it is
            raise exc
        return response

    def filter_queryset(self, queryset):
        # No filter or ordering asked for: skip building the filter forms (the paginator
        # applies the default ordering itself).
        if not set(self.request.query_params) - PAGINATION_PARAMS:
            return queryset
        return super().filter_queryset(queryset)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["now"] = timezone.now()
        return context

    @property
    def tenant(self):
        return tenant_of(self.request)


# --- listings -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Capacity offered to you",
        description="Published listings: public ones and those private to your tenant.",
        responses={200: ListingSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One listing", responses={200: ListingSerializer, **errors(404)}
    ),
)
class ListingViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ListingSerializer
    filterset_class = ListingFilter
    ordering_fields = ["id", "earliest_start"]
    ordering = ["-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Listing.objects.none()
        return selectors.listing_list_for_tenant(self.tenant)


# --- lease requests -----------------------------------------------------------------------------


class LeaseRequestView(TenantAPIMixin, generics.GenericAPIView):
    serializer_class = LeaseRequestInputSerializer

    @extend_schema(
        summary="Request a lease from a listing",
        description="Creates a lease in `draft` awaiting the operator's approval. "
        "Price, term, notice days and contract zone come from the listing.",
        parameters=[IDEMPOTENCY_KEY],
        request=LeaseRequestInputSerializer,
        responses={201: LeaseDetailSerializer, **errors(400, 404, 409, 413, 415, 422)},
    )
    def post(self, request):
        data = self._valid(LeaseRequestInputSerializer)
        tenant = self.tenant

        def execute() -> Response:
            # A listing the tenant cannot GET (a draft, a withdrawn one, another's private
            # one) does not exist for its requests either: 404, as GET says.
            listing = get_object_or_404(
                selectors.listing_list_for_tenant(tenant), pk=data["listing"]
            )
            lease = services.tenant_lease_request(
                tenant=tenant,
                listing=listing,
                node_count=data["node_count"],
                commencement_date=data["commencement_date"],
            )
            return Response(_lease_detail(self, lease.pk), status=status.HTTP_201_CREATED)

        return run_idempotent(request, tenant, execute, self.render_error)

    def _valid(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _lease_detail(view, lease_id: int, lease: Lease | None = None) -> dict:
    if lease is None:
        lease = selectors.lease_detail_for_tenant(view.tenant).get(pk=lease_id)
    context = view.get_serializer_context()
    context["allocation_summary"] = selectors.allocation_summary(lease)
    return LeaseDetailSerializer(lease, context=context).data


# --- leases -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Your leases",
        responses={200: LeaseSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="One lease",
        description="With lines, allocation summary (nodes per cluster), notices, term end, "
        "effective end and the actions you may take.",
        responses={200: LeaseDetailSerializer, **errors(404)},
    ),
)
class LeaseViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = LeaseSerializer
    filterset_class = LeaseFilter
    ordering_fields = ["id", "commencement", "term_end"]
    ordering = ["-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Lease.objects.none()
        if self.action == "list":
            return selectors.lease_rows_for_tenant(self.tenant)
        return selectors.lease_detail_for_tenant(self.tenant)

    def retrieve(self, request, *args, **kwargs):
        lease = self.get_object()
        return Response(_lease_detail(self, lease.pk, lease))


# --- notices ------------------------------------------------------------------------------------


class LeaseNoticesView(TenantAPIMixin, mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = NoticeSerializer
    filterset_class = NoticeFilter
    ordering_fields = ["id", "received_at"]
    ordering = ["-id"]

    def is_list(self) -> bool:
        return self.request.method == "GET"

    def get_lease(self):
        return get_object_or_404(
            selectors.lease_list_for_tenant(self.tenant), pk=self.kwargs["lease_id"]
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notice.objects.none()
        return selectors.notice_list_for_lease(self.get_lease())

    @extend_schema(
        summary="The lease's notices (both parties)",
        responses={200: NoticeSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        summary="Give notice",
        description="For the whole lease, or for some of its `lines`. The notice date is "
        "today in the lease's zone; the response carries the computed `effective_end` and "
        "`outcome` (`moot` if the term ends first, `cancelled` if before commencement).",
        parameters=[IDEMPOTENCY_KEY],
        request=NoticeInputSerializer,
        responses={201: NoticeSerializer, **errors(400, 404, 409, 413, 415, 422)},
    )
    def post(self, request, *args, **kwargs):
        lease = self.get_lease()
        serializer = NoticeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def execute() -> Response:
            notice = services.tenant_notice_give(
                lease=lease,
                line_ids=data.get("lines", ()),
                requested_end_date=data.get("requested_end_date"),
                reason=data.get("reason", ""),
            )
            notice = selectors.notice_list_for_lease(lease).get(pk=notice.pk)
            body = NoticeSerializer(notice, context=self.get_serializer_context()).data
            return Response(body, status=status.HTTP_201_CREATED)

        return run_idempotent(request, self.tenant, execute, self.render_error)


class ConfirmWithdrawalView(TenantAPIMixin, generics.GenericAPIView):
    serializer_class = ConfirmWithdrawalInputSerializer

    @extend_schema(
        summary="Confirm the operator's withdrawal of its notice",
        description="The operator asked to withdraw one of its notices; your consent makes it "
        "`withdrawn` and the lease runs on as before the notice.",
        request=ConfirmWithdrawalInputSerializer,
        responses={200: NoticeSerializer, **errors(400, 404, 409, 413, 415)},
    )
    def post(self, request, lease_id: int, pk: int):
        lease = get_object_or_404(selectors.lease_list_for_tenant(self.tenant), pk=lease_id)
        notice = get_object_or_404(selectors.notice_list_for_lease(lease), pk=pk)
        serializer = ConfirmWithdrawalInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.tenant_notice_confirm_withdrawal(
            notice=notice, reason=serializer.validated_data.get("reason", "")
        )
        notice = selectors.notice_list_for_lease(lease).get(pk=notice.pk)
        return Response(NoticeSerializer(notice, context=self.get_serializer_context()).data)
