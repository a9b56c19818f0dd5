"""What every response under `/api/` shares, before and after the API's views.

Django refuses a disallowed `Host` (in `CommonMiddleware`, `SecurityMiddleware`) and a body over
`DATA_UPLOAD_MAX_MEMORY_SIZE` (when the body is read) with its own HTML or plain-text 400, or a
debug page with DEBUG on. Under `/api/` those answers are in the API's error format instead:
400 `disallowed_host` and 413 `request_too_large`. This middleware comes first, so it checks
both before any other middleware asks for the host or reads the body; other paths (the admin,
operator pages) keep Django's behaviour.

Every `/api/` response is `Cache-Control: no-store`: API responses are per tenant and some carry
secrets (a new webhook endpoint's signing secret), so no cache may keep them.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse

from .exceptions import error_body

API_PREFIX = "/api/"

# Django logs refused hosts here; so do we, so a misdirected client or a probe stays visible.
security_logger = logging.getLogger("django.security.DisallowedHost")


def _refusal(request: HttpRequest) -> HttpResponse | None:
    try:
        request.get_host()
    except DisallowedHost as exc:
        security_logger.error("%s", exc, extra={"status_code": 400})
        return JsonResponse(
            error_body("The Host header names no host this API serves.", "disallowed_host"),
            status=400,
        )
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not (raw.isascii() and raw.isdigit()):
        return JsonResponse(
            error_body("Content-Length must be a whole number of bytes.", "malformed_request"),
            status=400,
        )
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # A Content-Length of more digits than any limit is too large (and int() of thousands of
    # digits raises).
    if limit is not None and (len(raw) > 18 or int(raw) > limit):
        return JsonResponse(
            error_body(
                f"The body is larger than {limit} bytes.",
                "request_too_large",
                {"max_bytes": limit},
            ),
            status=413,
        )
    return None


class ApiBoundaryMiddleware:
    """See the module docstring. Must be the first middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        response = _refusal(request) or self.get_response(request)
        response["Cache-Control"] = "no-store"
        return response
