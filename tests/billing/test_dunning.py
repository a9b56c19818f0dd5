"""Dunning against a real SMTP server (aiosmtpd, in-process): the schedule, each reminder
once, payment stops the series, catch-up sends only the latest step, escalation copies legal."""

import datetime as dt
import socket
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from billing import dunning, payments, services
from billing.choices import ContactRole
from billing.models import Contact, Invoice, Reminder
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db
M = Decimal("1000000.00")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    try:
        yield inbox
    finally:
        controller.stop()


def world():
    lease, _ = lease_with_lines(commencement_date=dt.date(2026, 12, 1), rates=(M,), term_days=31)
    services.billing_run(now=at(2026, 12, 1))  # due 2026-12-31
    Contact.objects.create(tenant=lease.tenant, role=ContactRole.BILLING, email="ap@lab.example")
    Contact.objects.create(tenant=lease.tenant, role=ContactRole.LEGAL, email="law@lab.example")
    return lease.tenant, Invoice.objects.get(lease=lease)


def test_reminders_follow_the_schedule_once_each(smtp):
    tenant, invoice = world()
    assert dunning.send_reminders(now=at(2026, 12, 27, 9)).sent == []
    assert dunning.send_reminders(now=at(2026, 12, 28, 9)).sent == [(invoice.pk, "before_3")]
    assert dunning.send_reminders(now=at(2026, 12, 28, 10)).sent == []  # once
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "ap@lab.example"
    assert invoice.number in message["Subject"]
    assert "$1,000,000.00" in message.get_payload()
    dunning.send_reminders(now=at(2027, 1, 1, 9))
    dunning.send_reminders(now=at(2027, 1, 7, 9))
    assert [m["Subject"].split(" ", 3)[-1] for m in smtp.messages][1:] == [
        "1 day past due",
        "7 days past due",
    ]
    # A partial payment does not stop it; paying the rest does.
    payments.payment_record(
        tenant=tenant,
        amount="400000.00",
        value_date=dt.date(2027, 1, 10),
        reference="W1",
        now=at(2027, 1, 10),
    )
    assert dunning.send_reminders(now=at(2027, 1, 15, 9)).sent == [(invoice.pk, "after_15")]
    assert "$600,000.00" in smtp.messages[-1]["Subject"]
    payments.payment_record(
        tenant=tenant,
        amount="600000.00",
        value_date=dt.date(2027, 1, 20),
        reference="W2",
        now=at(2027, 1, 20),
    )
    assert dunning.send_reminders(now=at(2027, 1, 30, 9)).sent == []
    assert len(smtp.messages) == 4
    assert Reminder.objects.filter(invoice=invoice, sent=True).count() == 4


def test_after_downtime_only_the_latest_step_goes_out_and_escalation_copies_legal(smtp):
    _, invoice = world()
    outcome = dunning.send_reminders(now=at(2027, 2, 5, 9))  # 36 days past due, nothing sent yet
    assert outcome.sent == [(invoice.pk, "after_30")]
    assert outcome.skipped == 4
    (message,) = smtp.messages
    assert message["Cc"] == "law@lab.example"
    assert dunning.send_reminders(now=at(2027, 2, 6, 9)).sent == []


def test_an_smtp_failure_records_nothing_and_the_next_run_sends(settings):
    _, invoice = world()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens
    outcome = dunning.send_reminders(now=at(2026, 12, 28, 9))
    assert [pk for pk, _ in outcome.failed] == [invoice.pk]
    assert not Reminder.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert dunning.send_reminders(now=at(2026, 12, 28, 10)).sent == [(invoice.pk, "before_3")]
