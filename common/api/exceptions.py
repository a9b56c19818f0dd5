"""One exception handler for the API: every error body is `{"detail", "code", "extra"}`.

Domain errors carry their own code and status. DRF's errors are mapped to stable snake_case
codes; validation errors list their field messages under `extra.fields`. Anything else is left
to Django (a 500 is a bug to fix, not a response to design).

Error messages may echo what the client sent (a field name, a value). Every string of the body
is made safe to encode here, in one place: a lone surrogate is written as its `\\uXXXX`
escape, where UTF-8 would refuse to encode it and turn the error into a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.exceptions import DomainError

# DRF exception class → stable code. Order matters: subclasses first.
CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "malformed_request"),
    (exceptions.ValidationError, "validation_error"),
]


def error_body(detail: str, code: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "extra": extra or {}}


def encodable(value: Any) -> Any:
    """`value` with every string (and dict key) encodable as UTF-8: lone surrogates become
    their backslash escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    return value


def _flatten(detail: Any) -> Any:
    """ErrorDetail trees → plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every API error in the contract's format."""
    if isinstance(exc, DomainError):
        return Response(encodable(exc.as_dict()), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = next((c for cls, c in CODES if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        if not isinstance(fields, dict):
            fields = {"non_field_errors": fields}
        names = ", ".join(sorted(fields))
        body = error_body(f"Invalid input: {names}.", code, {"fields": fields})
    else:
        detail = exc.detail
        body = error_body(str(detail) if not isinstance(detail, dict | list) else "Error.", code)
        body["extra"].update(getattr(exc, "extra", None) or {})
        # DRF sets `Throttled.wait` (seconds or None); its stubs leave the attribute out.
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:  # type: ignore[attr-defined]
            body["extra"]["retry_after_s"] = int(exc.wait + 0.999)  # type: ignore[attr-defined]
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    response.data = encodable(body)
    return response
