"""Domain events: how a lower app makes a higher one act without importing it.

The layering (docs/architecture.md) lets an app import only the apps below it. When a change in
a lower app must make a higher one act — a notice that needs a credit note (leasing → billing),
an issued invoice that needs a webhook (billing → webhooks), a release that executes a reclaim
decision — the lower app emits an event and the higher one consumes it.

**Producing.** A service calls `emit(...)` (`emit_many` for a batch: one insert of events and
one of deliveries whatever its size) inside the transaction that makes the change. It writes a
`DomainEvent` and one `EventDelivery` per consumer registered for that kind, so the event exists
if and only if the change committed. After commit (`transaction.on_commit`) the new deliveries
are dispatched to the Celery task `common.deliver_events`, which runs them inline when Celery is
eager (no broker: the demo). A consumer may pass `wants`, a cheap filter run at emit time (one
query per batch), to decline events it would ignore — webhooks decline documents of tenants
with no endpoint, which keeps the billing run from queueing thousands of empty deliveries. An
event no consumer wants is not written: the table is a queue of work, not an audit log
(`LeaseEvent` and the billing documents are the record).

**Consuming.** `register(kinds, name, fn)`, one line in the consuming app's `AppConfig.ready`.
`deliver(delivery_id)` runs one delivery in one transaction: it locks the delivery row (FOR
UPDATE SKIP LOCKED on PostgreSQL; the writer lock on SQLite), goes on only if it is still
PENDING, runs `fn(event)` and marks the delivery DONE, so the consumer's writes and its "done"
commit together or not at all. A dispatch that is replayed, duplicated or raced by another
worker finds the row DONE or locked and does nothing: each delivery takes effect exactly once.
Consumers act on the current state of what the event names, as of the event's `occurred_at`
(deliveries may run in any order), and do database work only; anything external goes through
its own outbox (webhooks queue `WebhookDelivery` rows and send them after commit).

**Failures.** If `fn` raises, its writes are rolled back (a savepoint) and the delivery records
`attempts`, `last_error` (with the traceback's tail) and `next_attempt_at` (backoff: 30 s, 1 min,
2 min, ... capped at 1 h). After `MAX_ATTEMPTS`, or at once for a `DomainError` (a refusal no
retry will change), it is FAILED and waits for an operator: the admin lists failed, retrying
and stuck deliveries by consumer and kind, and its retry action (`delivery_retry`) records who.

**Catching up.** The sweep (`common.sweep_events`, every minute) dispatches the pending
deliveries whose `next_attempt_at` has passed: retries after their backoff, and fresh
deliveries whose after-commit dispatch was lost (a crash between commit and publish, a broker
outage) once `DISPATCH_GRACE` has passed. A dispatch the sweep duplicates is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .clock import resolve_now
from .db import lock_row
from .exceptions import Conflict, DomainError
from .models import DomainEvent, EventDelivery, EventDeliveryStatus
from .retry import exponential_backoff

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=1)
# A fresh delivery not consumed this long after it was written lost its dispatch: the sweep
# sends it. Longer than a busy queue takes to reach it (a duplicate is harmless, only wasted).
DISPATCH_GRACE = dt.timedelta(minutes=5)
# Deliveries per `common.deliver_events` task.
DISPATCH_BATCH = 100
# Deliveries the sweep dispatches per run; the rest wait a minute.
SWEEP_LIMIT = 2000
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, eq=False)
class Event:
    """An event to emit: `kind` (dotted), the subject that changed, what consumers need to
    know, and when it happened on the producer's clock."""

    kind: str
    subject: str
    subject_id: int
    payload: dict[str, Any]
    occurred_at: dt.datetime


# `wants(events)` returns those of `events` (all of one kind) the consumer needs.
Wants = Callable[[Sequence[Event]], Iterable[Event]]


@dataclass(frozen=True)
class Consumer:
    name: str
    kinds: frozenset[str]
    fn: Callable[[DomainEvent], Any]
    wants: Wants | None = None


_consumers: dict[str, Consumer] = {}


class DeliveryDone(Conflict):
    code = "event_delivery_done"
    default_message = "The delivery was consumed already; there is nothing to retry."


def register(
    kinds: str | Iterable[str],
    name: str,
    fn: Callable[[DomainEvent], Any],
    *,
    wants: Wants | None = None,
) -> None:
    """Have `fn(event)` run once for every event of `kinds` emitted from now on.

    `name` is stored on each delivery: keep it stable across releases (it is not a module
    path). Registering the same name again with the same function replaces its kinds.
    """
    current = _consumers.get(name)
    if current is not None and current.fn is not fn:
        raise ImproperlyConfigured(f"event consumer {name!r} is already registered")
    _consumers[name] = Consumer(
        name, frozenset([kinds] if isinstance(kinds, str) else kinds), fn, wants
    )


def consumers_of(kind: str) -> list[Consumer]:
    return [c for c in _consumers.values() if kind in c.kinds]


# --- producing ----------------------------------------------------------------------------------


def emit(
    kind: str,
    *,
    subject: str,
    subject_id: int,
    payload: dict[str, Any],
    occurred_at: dt.datetime,
) -> DomainEvent | None:
    """Emit one event (see `emit_many`); None if no consumer wants it."""
    written = emit_many([Event(kind, subject, subject_id, payload, occurred_at)])
    return written[0] if written else None


def emit_many(events: Iterable[Event]) -> list[DomainEvent]:
    """Write the events some consumer wants, with one delivery per such consumer, and dispatch
    the deliveries once the current transaction commits. Must run inside that transaction.

    Queries: one per consumer with a `wants` filter and kind present, then one insert of
    events and one of deliveries (none at all when nobody wants any of them).
    """
    batch = list(events)
    if not batch:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit inside the transaction of the change the event reports")
    by_kind: dict[str, list[Event]] = defaultdict(list)
    for event in batch:
        resolve_now(event.occurred_at)  # refuses a naive instant
        by_kind[event.kind].append(event)
    wanted: dict[Event, list[str]] = defaultdict(list)
    for kind, of_kind in by_kind.items():
        for consumer in consumers_of(kind):
            chosen = of_kind if consumer.wants is None else consumer.wants(of_kind)
            for event in chosen:
                wanted[event].append(consumer.name)
    kept = [event for event in batch if event in wanted]
    if not kept:
        return []
    rows = DomainEvent.objects.bulk_create(
        DomainEvent(
            kind=e.kind,
            subject=e.subject,
            subject_id=e.subject_id,
            payload=e.payload,
            occurred_at=e.occurred_at,
        )
        for e in kept
    )
    due = timezone.now() + DISPATCH_GRACE
    deliveries = EventDelivery.objects.bulk_create(
        EventDelivery(event=row, consumer=name, next_attempt_at=due)
        for event, row in zip(kept, rows, strict=True)
        for name in wanted[event]
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: dispatch(ids), robust=True)
    return rows


def dispatch(delivery_ids: Sequence[int], *, now: dt.datetime | None = None) -> None:
    """Send deliveries to the workers, `DISPATCH_BATCH` per task (inline when Celery is eager,
    each delivery still in its own transaction). A publish that fails is left to the sweep.
    `now`, if given, is the instant the consumers record (default: when each runs).

    `settings.EVENTS_QUEUE`, if set, routes them to their own queue, so a consumer's work is
    not queued behind a long fan-out (the daily billing run); a worker must consume it.
    """
    from .tasks import deliver_events

    options: dict[str, Any] = {"kwargs": {"now": now.isoformat()} if now else {}}
    queue = getattr(settings, "EVENTS_QUEUE", "")
    if queue:
        options["queue"] = queue
    for offset in range(0, len(delivery_ids), DISPATCH_BATCH):
        chunk = list(delivery_ids[offset : offset + DISPATCH_BATCH])
        try:
            deliver_events.apply_async(args=(chunk,), **options)
        except Exception:
            logger.warning(
                "event deliveries %s not dispatched; the sweep will", chunk, exc_info=True
            )


# --- consuming ----------------------------------------------------------------------------------


def backoff(attempts: int) -> dt.timedelta:
    """Wait after the `attempts`-th failure: 30 s, 1 min, 2 min, ... capped at 1 h."""
    return exponential_backoff(attempts, base=BACKOFF_BASE, cap=BACKOFF_CAP)


def _claim(delivery_id: int) -> EventDelivery | None:
    """The delivery, locked for the rest of the transaction, if it is still PENDING and no
    other worker holds it; None otherwise."""
    pending = EventDelivery.objects.filter(pk=delivery_id, status=EventDeliveryStatus.PENDING)
    if connection.vendor == "sqlite":
        # No row locks: a no-op write takes the database's write lock, so a concurrent consumer
        # waits here, then finds the delivery DONE.
        if not pending.update(status=F("status")):
            return None
        return pending.select_related("event").first()
    return pending.select_for_update(skip_locked=True, of=("self",)).select_related("event").first()


def _error_text(exc: BaseException) -> str:
    """The traceback's tail: it ends with the exception's type and message."""
    return "".join(traceback.format_exception(exc))[-MAX_ERROR_CHARS:]


def deliver(delivery_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Consume one delivery: the consumer's writes and DONE in one transaction.

    Returns the delivery's status afterwards, or None when there was nothing to do (already
    done or failed, gone, or being consumed by another worker). A consumer that raises leaves
    its writes rolled back and the failure recorded (see the module docstring).
    """
    now = resolve_now(now)
    with transaction.atomic():
        delivery = _claim(delivery_id)
        if delivery is None:
            return None
        consumer = _consumers.get(delivery.consumer)
        delivery.attempts += 1
        delivery.last_attempt_at = now
        try:
            if consumer is None:
                raise ImproperlyConfigured(f"no event consumer registered as {delivery.consumer!r}")
            with transaction.atomic():
                consumer.fn(delivery.event)
        except Exception as exc:
            permanent = isinstance(exc, DomainError | ImproperlyConfigured)
            if permanent or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = EventDeliveryStatus.FAILED
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts)
            delivery.last_error = _error_text(exc)
            logger.error(
                "event consumer %s failed on event %s (%s), attempt %s: %s",
                delivery.consumer,
                delivery.event_id,
                delivery.event.kind,
                delivery.attempts,
                exc,
                exc_info=not isinstance(exc, DomainError),
            )
        else:
            delivery.status = EventDeliveryStatus.DONE
            delivery.done_at = now
            delivery.next_attempt_at = None
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "last_attempt_at",
                "next_attempt_at",
                "done_at",
                "last_error",
            ]
        )
    return delivery.status


def sweep(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Dispatch the pending deliveries due at `now` (retries after their backoff, and fresh
    ones whose dispatch was lost). Each is first pushed back by `DISPATCH_GRACE`, so the next
    sweep does not send it again while it waits in the queue. Returns the ids dispatched.
    A given `now` is passed on to the consumers (a test's clock); by default each records when
    it runs."""
    given, now = now, resolve_now(now)
    with transaction.atomic():
        # Deliveries being consumed right now are locked: skipped, not waited for.
        ids = list(
            EventDelivery.objects.filter(
                status=EventDeliveryStatus.PENDING, next_attempt_at__lte=now
            )
            .order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        EventDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + DISPATCH_GRACE)
    if ids:
        dispatch(ids, now=given)
    return ids


@transaction.atomic
def delivery_retry(
    *, delivery: EventDelivery, actor: Any = None, now: dt.datetime | None = None
) -> EventDelivery:
    """Operator: run a failed (or still retrying) delivery again now, attempts reset; records
    who and when. A DONE delivery took effect and is refused (`event_delivery_done`)."""
    now = resolve_now(now)
    locked = lock_row(EventDelivery, delivery.pk)
    if locked.status == EventDeliveryStatus.DONE:
        raise DeliveryDone(extra={"delivery": locked.pk})
    locked.status = EventDeliveryStatus.PENDING
    locked.attempts = 0
    locked.next_attempt_at = now + DISPATCH_GRACE
    locked.retried_by = actor
    locked.retried_at = now
    locked.save(update_fields=["status", "attempts", "next_attempt_at", "retried_by", "retried_at"])
    transaction.on_commit(lambda: dispatch([locked.pk]), robust=True)
    return locked
