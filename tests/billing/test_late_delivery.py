"""Late-delivery cancellation (docs/rules/fleet.md, "Rent follows accepted nodes"): a line under
95 % accepted 30 days after commencement may be cancelled by the tenant; it becomes CANCELLED at
no charge and everything invoiced for it comes back as credit, exactly once."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing import cancellation, ledger, payments, services
from billing.choices import CreditNoteKind, InvoiceStatus, LedgerAccount
from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from clusters.models import Node
from common.models import DomainEvent
from leasing import late_delivery
from leasing.allocation import free_node_ids
from leasing.choices import LineStatus, Party
from leasing.events import EventKind
from leasing.models import Allocation, LeaseEvent
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import ClusterFactory
from tests.factories.leasing import UserFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)
DAY30 = dt.datetime(2026, 12, 1, tzinfo=UTC)  # 2026-11-01 + 30 days, UTC contract
D = dt.timedelta(days=1)
H = dt.timedelta(hours=1)
US = dt.timedelta(microseconds=1)
RATE = Decimal("3000000.00")


def late_line(accepted: int, *, nodes=100, rate=RATE, commencement=dt.date(2026, 11, 1), tz="UTC"):
    """A lease with one line of `nodes` nodes, `accepted` of them accepted before commencement,
    the others still pending."""
    lease, (line,) = lease_with_lines(
        commencement_date=commencement, tz=tz, rates=(rate,), drain_grace_hours=10**6
    )
    line.node_count = nodes
    line.save(update_fields=["node_count"])
    line.cluster = ClusterFactory()
    line.save(update_fields=["cluster"])
    created = Node.objects.bulk_create(
        Node(cluster=line.cluster, hostname=f"ld{lease.pk}-{i}") for i in range(nodes)
    )
    Allocation.objects.bulk_create(
        Allocation(
            line=line,
            node=node,
            starts_at=lease.commencement,
            ends_at=lease.term_end,
            accepted_at=lease.commencement - D if i < accepted else None,
        )
        for i, node in enumerate(created)
    )
    return lease, line


def cancel(lease, line, at, **kw):
    return cancellation.line_cancel_for_late_delivery(
        lease_id=lease.pk, line_id=line.pk, party=kw.pop("party", Party.TENANT), now=at, **kw
    )


def invoiced_for(line):
    return InvoiceLine.objects.filter(
        lease_line=line, invoice__status__in=(InvoiceStatus.ISSUED, InvoiceStatus.PAID)
    ).aggregate(s=Sum("amount"))["s"]


def credited_for(line):
    return CreditNoteLine.objects.filter(lease_line=line).aggregate(s=Sum("amount"))["s"]


def test_the_vector_94_of_100_on_day_30_every_invoice_amount_comes_back():
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)  # November, in advance
    services.billing_run(now=NOV + 19 * D)  # delivery credit for the 6 pending nodes so far
    services.billing_run(now=NOV + 24 * D)  # December, 7 days ahead
    (nov, dec) = Invoice.objects.filter(lease=lease).order_by("period")
    assert (nov.total, dec.total) == (RATE, RATE)
    delivered = CreditNote.objects.filter(lease=lease, kind=CreditNoteKind.DELIVERY).aggregate(
        s=Sum("total")
    )["s"]
    assert delivered > 0

    outcome = cancel(lease, line, DAY30)

    assert (outcome.figures.accepted, outcome.figures.nodes) == (94, 100)
    notes = {n.invoice_id: n for n in CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION)}
    assert notes[nov.pk].total == RATE - delivered
    assert notes[dec.pk].total == RATE
    assert all(n.number.startswith("CN-2026-") for n in notes.values())
    assert outcome.total == 2 * RATE - delivered
    # Every invoice amount for the line came back: credits equal what was invoiced.
    assert credited_for(line) == invoiced_for(line) == 2 * RATE
    line.refresh_from_db()
    assert line.status == LineStatus.CANCELLED
    assert line.effective_end == lease.commencement  # no charge: an empty billable life
    # Both invoices are settled by the credit (nothing was paid).
    for inv in (nov, dec):
        inv.refresh_from_db()
        assert payments.balance(inv) == 0
        assert inv.status == InvoiceStatus.ISSUED  # credited, not paid: owes nothing
    bal = ledger.balances()
    assert sum(bal.values()) == 0
    assert bal[LedgerAccount.AR] == 0


def test_the_line_is_cancelled_nodes_freed_and_the_actor_recorded():
    lease, line = late_line(94)
    operator = UserFactory()
    cancel(lease, line, DAY30 + H, party=Party.OPERATOR, actor=operator, reason="asked by phone")
    assert not Allocation.objects.filter(line=line, ends_at__gt=DAY30 + H).exists()
    assert len(free_node_ids(line.cluster_id, DAY30 + H, DAY30 + 2 * D, now=DAY30 + H)) == 100
    event = LeaseEvent.objects.get(lease=lease, kind=EventKind.LINE_CANCELLED)
    assert (event.actor, event.actor_party, event.reason) == (
        operator,
        "operator",
        "asked by phone",
    )
    assert event.data["cause"] == "late_delivery"
    assert event.data["accepted_nodes"] == 94


def test_the_tenant_is_told_by_webhook(settings, django_capture_on_commit_callbacks):
    from webhooks import services as webhooks
    from webhooks.models import WebhookDelivery

    settings.WEBHOOK_DISPATCH_ON_EVENT = False  # queued, not sent: the payload is what counts
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    endpoint = webhooks.webhook_endpoint_create(
        tenant=lease.tenant,
        url="https://hooks.example.com/landlord",
        event_types=["line.cancelled_late_delivery", "credit_note.issued"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = cancel(lease, line, DAY30)
    (note,) = outcome.notes
    by_type = {d.event_type: d for d in WebhookDelivery.objects.filter(endpoint=endpoint)}
    assert set(by_type) == {"line.cancelled_late_delivery", "credit_note.issued"}
    told = by_type["line.cancelled_late_delivery"]
    assert told.event_id == f"evt_ldc_{line.pk}"
    data = told.payload["data"]
    assert (data["line"], data["accepted_nodes"], data["node_count"]) == (line.pk, 94, 100)
    assert data["credited"] == "3000000.00"
    assert data["credit_notes"] == [
        {"id": note.pk, "number": note.number, "invoice": note.invoice_id, "total": "3000000.00"}
    ]
    assert "tenant" not in data
    assert by_type["credit_note.issued"].payload["data"]["kind"] == "cancellation"


def test_95_of_100_is_not_eligible_and_nothing_is_written():
    lease, line = late_line(95)
    services.billing_run(now=NOV + H)
    with pytest.raises(late_delivery.LineDelivered) as refused:
        cancel(lease, line, DAY30 + D)
    assert refused.value.extra["accepted_nodes"] == 95
    line.refresh_from_db()
    assert line.status == LineStatus.OPEN
    assert not CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).exists()
    assert not LeaseEvent.objects.filter(kind=EventKind.LINE_CANCELLED).exists()


def test_acceptance_is_measured_at_the_instant_of_the_request():
    _, line = late_line(94)
    # A 95th node accepted on day 31: the right has lapsed at that instant, not before.
    pending = Allocation.objects.filter(line=line, accepted_at__isnull=True).order_by("pk")[0]
    Allocation.objects.filter(pk=pending.pk).update(accepted_at=DAY30 + D)
    assert late_delivery.eligibility(line, now=DAY30 + D - US).eligible
    assert late_delivery.eligibility(line, now=DAY30 + D).refusal is late_delivery.LineDelivered


def test_before_day_30_is_not_eligible_the_boundary_instant_is():
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    with pytest.raises(late_delivery.LineCancellationNotYet) as refused:
        cancel(lease, line, DAY30 - US)
    assert refused.value.extra["opens_at"] == DAY30.isoformat()
    assert not CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).exists()
    cancel(lease, line, DAY30)  # day 30 itself, to the microsecond
    assert CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).count() == 1


def test_day_30_counts_local_calendar_days_across_a_dst_change():
    # Commencement 2026-10-15 00:00 CDT (05:00Z); 30 local days later is 2026-11-14 00:00 CST
    # (06:00Z): 30 days and one hour of elapsed time.
    lease, line = late_line(10, commencement=dt.date(2026, 10, 15), tz="America/Chicago")
    opens = late_delivery.cancellation_opens_at(lease)
    assert opens == dt.datetime(2026, 11, 14, 6, tzinfo=UTC)
    assert opens - lease.commencement == 30 * D + H
    assert late_delivery.eligibility(line, now=opens - US).refusal is (
        late_delivery.LineCancellationNotYet
    )
    assert late_delivery.eligibility(line, now=opens).eligible


def test_a_second_request_is_refused_and_writes_nothing():
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    cancel(lease, line, DAY30)
    counts = (CreditNote.objects.count(), LeaseEvent.objects.count(), DomainEvent.objects.count())
    with pytest.raises(late_delivery.LineAlreadyCancelled):
        cancel(lease, line, DAY30 + H)
    after = (CreditNote.objects.count(), LeaseEvent.objects.count(), DomainEvent.objects.count())
    assert after == counts


def test_later_runs_neither_bill_nor_credit_the_cancelled_line_again():
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    services.billing_run(now=NOV + 19 * D)
    services.billing_run(now=NOV + 24 * D)
    cancel(lease, line, DAY30)
    before = credited_for(line)
    # The billing consumer of `line.cancelled` and the later runs (January, February).
    assert services.credit_notes_for_changes(lease=lease, now=DAY30) == []
    services.billing_run(now=DAY30 + 25 * D)
    services.billing_run(now=DAY30 + 60 * D)
    assert credited_for(line) == before == invoiced_for(line)
    assert not InvoiceLine.objects.filter(lease_line=line, invoice__period__gte=dt.date(2027, 1, 1))


def test_a_paid_invoice_credit_becomes_customer_credit():
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    (nov,) = Invoice.objects.filter(lease=lease)
    services.invoice_mark_paid(invoice=nov, now=NOV + 2 * D)
    cancel(lease, line, DAY30)
    nov.refresh_from_db()
    assert nov.status == InvoiceStatus.PAID
    assert payments.unapplied(lease.tenant) == (0, RATE)  # all of it back as the tenant's credit
    bal = ledger.balances()
    assert sum(bal.values()) == 0
    assert bal[LedgerAccount.CUSTOMER_CREDIT] == -RATE


def test_other_lines_of_the_lease_keep_their_rent():
    lease, (line, other) = lease_with_lines(
        commencement_date=dt.date(2026, 11, 1), rates=(RATE, Decimal("24.01"))
    )
    line.cluster = ClusterFactory()
    line.save(update_fields=["cluster"])
    node = Node.objects.create(cluster=line.cluster, hostname="solo")
    line.node_count = 1
    line.save(update_fields=["node_count"])
    Allocation.objects.create(line=line, node=node, starts_at=NOV, ends_at=lease.term_end)
    services.billing_run(now=NOV + H)
    cancel(lease, line, DAY30)
    assert credited_for(line) == invoiced_for(line) == RATE
    assert credited_for(other) is None
    services.billing_run(now=DAY30 + 25 * D)
    jan = Invoice.objects.get(lease=lease, period=dt.date(2027, 1, 1))
    assert [(il.lease_line_id, il.amount) for il in jan.lines.all()] == [
        (other.pk, Decimal("24.01"))
    ]


def test_preview_shows_the_money_without_writing():
    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    preview = cancellation.cancellation_preview(lease_id=lease.pk, line_id=line.pk, now=DAY30)
    assert preview.figures.eligible
    assert [(c.invoice.period, c.total) for c in preview.credits] == [(dt.date(2026, 11, 1), RATE)]
    assert not CreditNote.objects.exists()
    line.refresh_from_db()
    assert line.status == LineStatus.OPEN


def test_a_service_credit_already_given_is_netted_and_the_quote_agrees():
    from billing import selectors
    from billing.service_credits import service_credit_run
    from clusters import fleet

    lease, line = late_line(94)
    services.billing_run(now=NOV + H)
    accepted = Allocation.objects.filter(line=line, accepted_at__isnull=False).first()
    incident = fleet.incident_open(
        node=accepted.node, category="gpu", source="operator", now=NOV + 3 * D
    )
    fleet.incident_resolve(incident=incident, now=NOV + 5 * D)
    services.billing_run(now=NOV + 24 * D)
    service_credit_run(now=DAY30 + H)  # November closed: its service credit
    service = CreditNote.objects.get(kind=CreditNoteKind.SERVICE).total
    assert service > 0
    cancel(lease, line, DAY30 + 2 * H)
    # Credits on the line never exceed what was invoiced: the cancellation netted the service
    # credit as it netted the delivery credits.
    assert credited_for(line) == invoiced_for(line) == 2 * RATE
    quote = selectors.lease_termination_quote(lease, notice_date=dt.date(2026, 12, 2))
    assert (quote.rent_due, quote.rent_invoiced, quote.credit_due) == (0, 0, 0)
