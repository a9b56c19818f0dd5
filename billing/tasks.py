"""Billing jobs (Celery). Thin: ids in, one service call, explicit names and time limits.

Delivery is at least once (acks late, re-queued when a worker dies), and beat may fire twice:
every task here is idempotent because the services are (unique invoice per lease and month,
one transaction per chunk of leases, credit notes net of what was already credited).

* `billing.daily_billing_scan` (beat, 00:10 UTC): records the day's run, then fans out one
  `billing.bill_lease` per lease in chunks, each with an expiry before the next scan (which
  catches up on anything that expired or was lost).
* `billing.bill_lease`: bills one lease as of the scan's instant; returns early when there is
  nothing left to do (a duplicate or redelivered task).
* `billing.mark_overdue` (beat, 00:30 UTC): overdue flags and tenant standing.
* `billing.recognize_revenue` (beat, 00:40 UTC): revenue of every closed day not yet
  recognized (billing/ledger.py), once per day.
* `billing.service_credits_scan` (beat, 00:20 UTC): fans out `billing.service_credits_chunk`
  per chunk of leases, which settles their closed months: availability reports and service
  credit notes, once per lease and month (billing/service_credits.py).

Retries: only transient database errors (OperationalError, InterfaceError — a restarted or
unreachable PostgreSQL, a terminated backend), with exponential backoff and jitter. A domain
error is logged and stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_date

from common.clock import parse_instant
from common.db import drop_broken_connections
from common.exceptions import DomainError

from . import dunning, ledger, loading, service_credits, services
from .choices import BillingRunStatus
from .constants import BILL_LEASE_EXPIRES_S, FANOUT_CHUNK_SIZE, SERVICE_CREDIT_CHUNK
from .models import BillingRun

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}
LIMITS = {"soft_time_limit": 300, "time_limit": 360}


def _instant(value: str | None) -> dt.datetime:
    return parse_instant(value) or timezone.now()


def _period(value: str | None) -> dt.date | None:
    return parse_date(value) if value else None


@shared_task(name="billing.daily_billing_scan", bind=True, acks_late=True, **RETRY, **LIMITS)
def daily_billing_scan(
    self, now: str | None = None, period: str | None = None, force: bool = False
) -> dict[str, Any]:
    """Record today's run and fan out per-lease billing; a second fire the same day is a
    no-op once the first has dispatched (`force=True` dispatches again)."""
    try:
        instant = _instant(now)
        month = _period(period)
        run = services.billing_run_claim(period=month, now=instant, force=force)
        if run is None:
            return {"skipped": "already dispatched"}
        ids = list(loading.billable_leases(now=instant))
        kwargs = {"run_id": run.pk, "now": instant.isoformat(), "period": period}
        # One broker connection for the whole fan-out (none in eager mode).
        eager = self.app.conf.task_always_eager
        with contextlib.nullcontext() if eager else self.app.producer_or_acquire() as producer:
            for offset in range(0, len(ids), FANOUT_CHUNK_SIZE):
                for lease_id in ids[offset : offset + FANOUT_CHUNK_SIZE]:
                    bill_lease.apply_async(
                        args=(lease_id,),
                        kwargs=kwargs,
                        expires=BILL_LEASE_EXPIRES_S,
                        producer=producer,
                    )
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRunStatus.DISPATCHED,
            leases_scanned=len(ids),
            finished_at=timezone.now(),
        )
        return {"run": run.pk, "leases": len(ids)}
    except TRANSIENT:
        drop_broken_connections()
        raise


@shared_task(name="billing.bill_lease", bind=True, acks_late=True, **RETRY, **LIMITS)
def bill_lease(
    self,
    lease_id: int,
    run_id: int | None = None,
    now: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """Bill one lease as of `now` (the scan's instant): invoices due, credit notes, holdover."""
    try:
        run = BillingRun.objects.filter(pk=run_id).first() if run_id else None
        outcome = services.lease_bill(
            lease_id=lease_id, now=_instant(now), period=_period(period), run=run
        )
    except TRANSIENT:
        drop_broken_connections()
        raise
    except DomainError as exc:
        logger.warning("billing.bill_lease %s refused: %s %s", lease_id, exc.code, exc.extra)
        if run_id:
            BillingRun.objects.filter(pk=run_id).update(errors=F("errors") + 1)
        return {"lease": lease_id, "error": exc.code}
    return {
        "lease": lease_id,
        "invoices": [i.number for i in outcome.invoices],
        "credit_notes": [c.number for c in outcome.credit_notes],
    }


@shared_task(name="billing.mark_overdue", bind=True, acks_late=True, **RETRY, **LIMITS)
def mark_overdue(self, now: str | None = None) -> dict[str, int]:
    """Flag overdue invoices and set tenant standing (idempotent)."""
    try:
        outcome = services.mark_overdue(now=_instant(now))
    except TRANSIENT:
        drop_broken_connections()
        raise
    return {
        "newly_overdue": outcome.newly_overdue,
        "tenants_past_due": outcome.tenants_past_due,
        "tenants_current": outcome.tenants_current,
    }


@shared_task(name="billing.recognize_revenue", bind=True, acks_late=True, **RETRY, **LIMITS)
def recognize_revenue(self, now: str | None = None) -> dict[str, Any]:
    """Recognize every closed UTC day not recognized yet, oldest first (catches up after
    downtime). Each day is claimed by its `RecognitionRun` row in the transaction that writes
    its postings: duplicate beats, retries and a killed worker recognize a day once."""
    try:
        outcomes = ledger.recognize_due(now=_instant(now))
    except TRANSIENT:
        drop_broken_connections()
        raise
    return {
        "days": [o.day.isoformat() for o in outcomes if o.ran],
        "amount": str(sum((o.amount for o in outcomes), Decimal(0))),
    }


@shared_task(name="billing.send_reminders", bind=True, acks_late=True, **RETRY, **LIMITS)
def send_reminders(self, now: str | None = None) -> dict[str, Any]:
    """Today's dunning reminders, each once (billing/dunning.py)."""
    try:
        outcome = dunning.send_reminders(now=_instant(now))
    except TRANSIENT:
        drop_broken_connections()
        raise
    return {"sent": len(outcome.sent), "skipped": outcome.skipped, "failed": len(outcome.failed)}


@shared_task(name="billing.service_credits_scan", bind=True, acks_late=True, **RETRY, **LIMITS)
def service_credits_scan(self, now: str | None = None) -> dict[str, Any]:
    """Publish one `billing.service_credits_chunk` per chunk of billable leases. A duplicate
    fire publishes the chunks again; they find their months settled and write nothing."""
    try:
        instant = _instant(now)
        ids = list(loading.billable_leases(now=instant))
        chunks = [
            ids[offset : offset + SERVICE_CREDIT_CHUNK]
            for offset in range(0, len(ids), SERVICE_CREDIT_CHUNK)
        ]
        eager = self.app.conf.task_always_eager
        with contextlib.nullcontext() if eager else self.app.producer_or_acquire() as producer:
            for chunk in chunks:
                service_credits_chunk.apply_async(
                    args=(chunk,),
                    kwargs={"now": instant.isoformat()},
                    expires=BILL_LEASE_EXPIRES_S,
                    producer=producer,
                )
        return {"leases": len(ids), "chunks": len(chunks)}
    except TRANSIENT:
        drop_broken_connections()
        raise


@shared_task(name="billing.service_credits_chunk", bind=True, acks_late=True, **RETRY, **LIMITS)
def service_credits_chunk(self, lease_ids: list[int], now: str | None = None) -> dict[str, Any]:
    """Settle the closed months of these leases as of `now` (idempotent)."""
    try:
        notes = service_credits.service_credits(lease_ids=lease_ids, now=_instant(now))
    except TRANSIENT:
        drop_broken_connections()
        raise
    return {"leases": len(lease_ids), "credit_notes": [n.number for n in notes]}
