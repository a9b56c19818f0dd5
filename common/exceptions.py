"""One base for every refusal a service can make.

A `DomainError` carries a stable snake_case `code`, the HTTP status an API should answer with,
a human message and structured `extra` data. Services raise them; the API's exception handler
and the admin's actions render them. Nothing else should decide how a business rule failed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A business rule refused the operation; nothing was written."""

    code: ClassVar[str] = "domain_error"
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The operation is not allowed."

    def __init__(self, message: str | None = None, *, extra: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.extra = extra or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        """The error body of the API contract: detail, code, extra."""
        return {"detail": self.message, "code": self.code, "extra": self.extra}


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."


class InvalidInput(DomainError):
    code = "validation_error"
    http_status = 400
    default_message = "Invalid input."


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
    default_message = "The object changed state; reload and try again."


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"
    default_message = "That transition is not allowed from the current state."
