"""`Idempotency-Key` on the POSTs that create leases and notices (tenant API) and payments
(operator API). A key is the tenant's, or the staff user's whose operator key sent it.

* Same key, same method, path and body → the first response (status and body) is replayed.
* Same key with anything else → 422 `idempotency_key_reused`; nothing runs.
* Concurrent first requests with one key: the record is inserted in the same transaction that
  runs the service and stores the response, so the unique constraint (owner, key) makes the
  second insert wait for the first transaction. When it commits the second one replays its
  response; if it rolled back the second one runs. A wait longer than `LOCK_WAIT` answers 409
  `idempotency_in_progress` (retry later). Never two executions.
* Responses to refused requests are stored and replayed too: a 404 for an object the body
  names (the listing of a lease request) and a 409 from a service. Nothing is stored for
  invalid input (400, from the serializer or the service: the client fixes its body and
  retries with the same key), nor for a request refused before the key is looked at (a URL
  naming no object of the tenant's: 404; authentication, throttling).
* Records are kept `RETENTION` (24 h), then purged by `leasing.purge_idempotency_records`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import Http404
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from common.exceptions import Conflict, DomainError
from leasing.models import IdempotencyRecord, Tenant

if TYPE_CHECKING:
    from django.contrib.auth.models import User

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
RETENTION = dt.timedelta(hours=24)
LOCK_WAIT = "5s"
IN_PROGRESS = 0  # status_code of a record whose first request has not finished


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = "This Idempotency-Key was used with a different request."


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed; retry."


def _key(request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not raw or len(raw) > MAX_KEY_CHARS or not raw.isascii() or not raw.isprintable():
        raise exceptions.ValidationError(
            {HEADER: [f"1 to {MAX_KEY_CHARS} printable ASCII characters."]}
        )
    return raw


def request_fingerprint(request) -> str:
    """SHA-256 of method, path and the canonical JSON of the body (key order ignored)."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    material = f"{request.method}\n{request.path}\n{body}".encode()
    return hashlib.sha256(material).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(extra={"key": record.key})
    if record.status_code == IN_PROGRESS:
        raise IdempotencyInProgress()
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def _jsonable(data: Any) -> Any:
    return json.loads(JSONRenderer().render(data))


def _owner(owner: Tenant | User) -> dict[str, Any]:
    return {"tenant": owner} if isinstance(owner, Tenant) else {"operator": owner}


def run_idempotent(
    request,
    owner: Tenant | User,
    execute: Callable[[], Response],
    render_error: Callable[[Exception], Response],
) -> Response:
    """Run `execute` at most once per (owner, Idempotency-Key), the owner a tenant or a staff
    user; see the module docstring.

    `execute` calls the service and returns the success response; a `DomainError`, DRF error
    or `Http404` it raises is rendered by `render_error` and stored like a success.
    """
    key = _key(request)
    if key is None:
        return execute()
    fingerprint = request_fingerprint(request)
    existing = IdempotencyRecord.objects.filter(**_owner(owner), key=key).first()
    if existing is not None:
        return _replay(existing, fingerprint)
    with transaction.atomic():
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = %s", [LOCK_WAIT])
                record = IdempotencyRecord.objects.create(
                    **_owner(owner),
                    key=key,
                    method=request.method,
                    path=request.path[:500],
                    request_hash=fingerprint,
                    status_code=IN_PROGRESS,
                    response_body={},
                )
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = DEFAULT")
        except IntegrityError:
            # Another request with this key committed first (we waited for it): replay it.
            winner = IdempotencyRecord.objects.filter(**_owner(owner), key=key).first()
            if winner is None:
                raise IdempotencyInProgress() from None
            return _replay(winner, fingerprint)
        except OperationalError as exc:
            # lock_timeout: the first request is still running.
            raise IdempotencyInProgress() from exc
        try:
            with transaction.atomic():
                response = execute()
        except (DomainError, exceptions.APIException, Http404) as exc:
            response = render_error(exc)
        if response.status_code == 400 or response.status_code >= 500:
            # Invalid input (the client fixes its body and retries with the same key) and
            # server failures are not remembered.
            transaction.set_rollback(True)
            return response
        record.status_code = response.status_code
        record.response_body = _jsonable(response.data)
        record.save(update_fields=["status_code", "response_body"])
    return response


def purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete records older than the retention; returns how many."""
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - RETENTION).delete()
    return deleted
