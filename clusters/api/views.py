"""The operator ingestion API: monitoring pushes health events (docs/api.md, "Operator
ingestion"). Authenticated by a monitoring source's key, throttled per source, one batch per
request applied whole or refused whole (`clusters.ingest`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.ingest import (
    MAX_BATCH,
    HealthEventIn,
    batch_errors,
    health_events_ingest,
    refuse,
)
from clusters.models import MonitoringSource
from common.api.query import QuerySpec, check_query
from common.api.serializers import ErrorSerializer
from common.exceptions import InvalidInput

from .authentication import IsMonitoringSource, MonitoringSourceAuthentication
from .serializers import (
    HealthEventBatchResultSerializer,
    HealthEventBatchSerializer,
    HealthEventSerializer,
)
from .throttling import MonitoringSourceRateThrottle

ERROR_TEXT = {
    400: "A malformed batch, refused whole (`validation_error`): `extra.fields` names each "
    "failing item's field as `events[i].field` (unknown node, an event id repeated in the "
    "batch, a naive or future instant, an unknown severity or category), or `events` "
    "(missing, empty, more than 1,000 items). Nothing was applied.",
    401: "No, malformed, unknown or revoked monitoring key (`not_authenticated`, "
    "`authentication_failed`). Tenant keys are refused.",
    413: "Body larger than the server takes (`request_too_large`).",
    415: "Body is not JSON (`unsupported_media_type`).",
    429: "Too many batches from this source, or too many refused keys from this address "
    "(`throttled`); see Retry-After.",
}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=ERROR_TEXT[code])
        for code in codes
    }


def _flat(prefix: str, detail: Any) -> dict[str, list[str]]:
    """DRF's nested field errors as `events[i].field` → messages."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(_flat(f"{prefix}.{key}", value))
        return out
    return {prefix: [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]}


def parse_batch(data: Any, now: dt.datetime) -> list[HealthEventIn]:
    """The batch's events, or `InvalidInput` naming every failing item's field."""
    if not isinstance(data, dict):
        raise InvalidInput(extra={"fields": {"non_field_errors": ["Expected a JSON object."]}})
    unknown = sorted(set(data) - {"events"})
    if unknown:
        raise InvalidInput(extra={"fields": {name: ["Unknown field."] for name in unknown}})
    raw = data.get("events")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(extra={"fields": {"events": ["A non-empty list of events."]}})
    if len(raw) > MAX_BATCH:
        raise refuse({"events": [f"At most {MAX_BATCH} events per batch (got {len(raw)})."]})
    errors: dict[str, list[str]] = {}
    parsed: list[tuple[int, HealthEventIn]] = []
    for index, item in enumerate(raw):
        serializer = HealthEventSerializer(data=item)
        if not serializer.is_valid():
            errors.update(_flat(f"events[{index}]", serializer.errors))
            continue
        v = serializer.validated_data
        parsed.append(
            (
                index,
                HealthEventIn(
                    event_id=v["event_id"],
                    node=v["node"],
                    observed_at=v["observed_at"],
                    severity=v["severity"],
                    category=v.get("category", ""),
                    message=v.get("message", ""),
                    details=v.get("details", {}),
                ),
            )
        )
    _, more = batch_errors(parsed, now, size=len(raw))
    # A field DRF already refused is named once, with DRF's message.
    errors = {**more, **errors}
    if errors:
        raise refuse(errors)
    return [item for _, item in parsed]


class HealthEventsView(APIView):
    authentication_classes = [MonitoringSourceAuthentication]
    permission_classes = [IsMonitoringSource]
    throttle_classes = [MonitoringSourceRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        check_query(request.query_params, QuerySpec())

    def handle_exception(self, exc):
        if isinstance(exc, InvalidInput) and isinstance(exc.extra.get("fields"), dict):
            detail = exc.message
            exc = exceptions.ValidationError(exc.extra["fields"])
            response = super().handle_exception(exc)
            response.data["detail"] = detail
            return response
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="health_events_ingest",
        tags=["ops"],
        summary="Push a batch of health events",
        description="Up to 1,000 events per request. Each event id is applied once per source: "
        "a repeated one is listed under `duplicates` and changes nothing. `down`/`degraded` "
        "opens a monitoring incident of the category on the node unless one is open; `ok` "
        "resolves the node's open monitoring incidents (of the category, if given). Node "
        "status follows. A batch with any bad item is refused whole, naming each item "
        "(`events[i].field`); nothing is applied.",
        request=HealthEventBatchSerializer,
        responses={
            200: HealthEventBatchResultSerializer,
            **_errors(400, 401, 413, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        now = timezone.now()
        items = parse_batch(request.data, now)
        source = cast(MonitoringSource, request.auth)  # set by MonitoringSourceAuthentication
        result = health_events_ingest(source=source, items=items, now=now)
        return Response(result.as_dict(), status=status.HTTP_200_OK)
