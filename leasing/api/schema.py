"""OpenAPI helpers: the error responses every operation documents."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from common.api.serializers import ErrorSerializer

ERROR_TEXT = {
    400: "Invalid input (`validation_error`, with `extra.fields` naming each field or query "
    "parameter: unknown, repeated, empty or out of range; a key given twice in a JSON object) "
    "or a malformed body (`malformed_request`, with `extra.reason`: not JSON, nested deeper "
    "than 32 levels, a lone surrogate escape).",
    401: "No, malformed, revoked or expired API key (`not_authenticated`, "
    "`authentication_failed`).",
    404: "No such object for this tenant (`not_found`).",
    409: "A rule refused the operation now (e.g. `notice_not_allowed`, "
    "`capacity_unavailable`, `withdrawal_not_allowed`, "
    "`idempotency_in_progress`, `webhook_endpoint_limit`).",
    413: "Body larger than the server takes (`request_too_large`, `extra.max_bytes`).",
    415: "Body is not JSON (`unsupported_media_type`).",
    422: "Idempotency-Key reused with a different request (`idempotency_key_reused`).",
    429: "Too many requests for this key, or too many refused keys from this address "
    "(`throttled`); see Retry-After.",
    503: "The database is unavailable; retry (`service_unavailable`).",
}

# Every authenticated operation can answer these.
COMMON = (401, 429, 503)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(response=ErrorSerializer, description=ERROR_TEXT[status])
        for status in sorted({*COMMON, *statuses})
    }


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Up to 255 printable ASCII characters. The same key with the same body "
    "replays the first response (kept 24 h); with a different body, 422.",
)
