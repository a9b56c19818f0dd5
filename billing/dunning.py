"""Dunning: reminders on the decided schedule (docs/rules/receivables.md).

An invoice that still owes money gets an e-mail to its tenant's billing contacts 3 days before
its due date, then 1, 7, 15 and 30 days after (UTC dates). Each step goes out once: the
`Reminder` row is unique per invoice and step and is inserted in the transaction that sends it
(an SMTP failure rolls it back, so the next run tries again; a concurrent run's insert waits for
it and finds the step taken). The row commits right after the SMTP server accepted the
message: a worker killed in that instant leaves no row and the next run sends again — the one
duplicate SMTP allows, with the same Message-ID (`message_id`). SMTP offers no way to make the
acceptance and the commit one step; the opposite order would lose the reminder instead.
Payment stops the series: only invoices with a balance are reminded. After downtime only the
latest step due is sent and the earlier ones are recorded as skipped, so a tenant never
receives a burst. The 30-day reminder
is the escalation: it is copied to the legal contacts and listed on the operator's receivables
page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from common.clock import resolve_now
from common.money import format_money

from . import payments
from .choices import OPEN_STATUSES, REMINDER_OFFSETS, ContactRole, ReminderStep
from .models import Contact, Invoice, Reminder

ESCALATION = ReminderStep.AFTER_30


def escalations() -> QuerySet[Reminder]:
    """The escalation reminders sent for invoices still open: where dunning has escalated and
    the money is still owed (the receivables page and the operator's inbox list them)."""
    return Reminder.objects.filter(
        step=ESCALATION, sent=True, invoice__status__in=OPEN_STATUSES
    ).select_related("invoice__tenant")


@dataclass
class DunningOutcome:
    sent: list[tuple[int, str]] = field(default_factory=list)
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


def due_step(due: dt.date, today: dt.date) -> ReminderStep | None:
    """The latest step whose date has come, if any."""
    found = None
    for step, offset in REMINDER_OFFSETS.items():
        if due + dt.timedelta(days=offset) <= today:
            found = step
    return found


def _recipients(tenant_id: int, step: str, fallback: str) -> tuple[list[str], list[str]]:
    contacts = list(Contact.objects.filter(tenant_id=tenant_id).values_list("role", "email"))
    to = [email for role, email in contacts if role == ContactRole.BILLING] or (
        [fallback] if fallback else []
    )
    cc = (
        [email for role, email in contacts if role == ContactRole.LEGAL]
        if step == ESCALATION
        else []
    )
    return to, cc


def _message(invoice: Invoice, step: str, owed, to: list[str], cc: list[str]) -> EmailMessage:
    due = invoice.due_at.date() if invoice.due_at else None
    label = ReminderStep(step).label
    subject = f"Invoice {invoice.number}: {format_money(owed, invoice.currency)} {label}"
    body = (
        f"Dear {invoice.tenant.name},\n\n"
        f"Invoice {invoice.number} (lease {invoice.lease.number}, {invoice.period:%B %Y}) of "
        f"{format_money(invoice.total, invoice.currency)} is due on {due}. "
        f"{format_money(owed, invoice.currency)} is still open ({label}).\n\n"
        "If you have already paid, thank you: please ignore this reminder.\n"
    )
    return EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        to,
        cc=cc,
        headers={"Message-ID": message_id(invoice.pk, step)},
    )


def message_id(invoice_id: int, step: str) -> str:
    """The reminder's Message-ID: the same for every attempt at one (invoice, step), so a
    copy sent again after a crash between the SMTP server's acceptance and the commit (see
    the module docstring) is recognizable as the same message by mail systems that
    deduplicate on it."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "landlord.invalid"
    return f"<reminder-{invoice_id}-{step}@{domain}>"


def send_reminders(*, now: dt.datetime | None = None) -> DunningOutcome:
    """Send today's reminders, once each (safe to run twice, concurrently or after a crash)."""
    now = resolve_now(now)
    today = now.astimezone(dt.UTC).date()
    horizon = now + dt.timedelta(days=3 + 1)
    candidates = list(
        Invoice.objects.filter(status__in=OPEN_STATUSES, due_at__lt=horizon)
        .select_related("tenant", "lease")
        .order_by("due_at", "pk")
    )
    owed = payments.balances(candidates)
    done = set(Reminder.objects.filter(invoice__in=candidates).values_list("invoice_id", "step"))
    outcome = DunningOutcome()
    for invoice in candidates:
        if owed[invoice.pk] <= 0 or invoice.due_at is None:
            continue
        step = due_step(invoice.due_at.astimezone(dt.UTC).date(), today)
        if step is None or (invoice.pk, step) in done:
            continue
        to, cc = _recipients(invoice.tenant_id, step, invoice.tenant.billing_email)
        if not to:
            continue
        try:
            with transaction.atomic():
                Reminder.objects.create(
                    invoice=invoice, step=step, at=now, recipients=to + cc, balance=owed[invoice.pk]
                )
                # Earlier steps never sent are recorded as skipped (never sent later).
                for earlier, offset in REMINDER_OFFSETS.items():
                    if offset >= REMINDER_OFFSETS[step]:
                        break
                    if (invoice.pk, earlier) not in done:
                        Reminder.objects.get_or_create(
                            invoice=invoice,
                            step=earlier,
                            defaults={"sent": False, "at": now, "balance": owed[invoice.pk]},
                        )
                        outcome.skipped += 1
                _message(invoice, step, owed[invoice.pk], to, cc).send(fail_silently=False)
        except IntegrityError:
            continue  # a concurrent run sent it
        except OSError as exc:  # SMTP down: nothing recorded, the next run tries again
            outcome.failed.append((invoice.pk, str(exc)))
            continue
        outcome.sent.append((invoice.pk, step))
    return outcome
