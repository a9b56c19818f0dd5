"""Service credit notes (billing/service_credits.py; docs/rules/fleet.md, "Availability and
service credits"): issued by the run after the month closes, one per lease and month, with the
availability report; exactly once however often the run runs."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing import service_credits as sc
from billing import services
from billing.choices import CreditNoteKind, DocumentEvent
from billing.models import AvailabilityReport, CreditNote
from clusters import fleet
from clusters.models import MaintenanceWindow
from leasing.models import Allocation
from tests.factories.billing import lease_with_lines

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOV = dt.datetime(2026, 11, 1, tzinfo=UTC)
DEC = dt.datetime(2026, 12, 1, tzinfo=UTC)
D = dt.timedelta(days=1)
H = dt.timedelta(hours=1)


def leased(rate=Decimal("100000000.00"), nodes=10, commencement=dt.date(2026, 10, 1), **kw):
    """A lease of one line of `nodes` nodes, all accepted at commencement, billed through
    November."""
    lease, (line,) = lease_with_lines(
        commencement_date=commencement, rates=(rate,), term_days=365, with_nodes=True, **kw
    )
    Allocation.objects.filter(line=line).exclude(
        pk__in=Allocation.objects.filter(line=line).order_by("pk").values("pk")[:nodes]
    ).delete()
    line.node_count = nodes
    line.save(update_fields=["node_count"])
    allocations = list(Allocation.objects.filter(line=line).order_by("pk"))
    services.billing_run(now=NOV - 7 * D)
    return lease, line, allocations


def down(allocation, start, end):
    incident = fleet.incident_open(
        node=allocation.node, category="gpu", source="operator", now=start
    )
    fleet.incident_resolve(incident=incident, now=end)
    return incident


def test_a_closed_month_gets_its_service_credit_note_with_the_report():
    lease, line, allocs = leased()
    incident = down(allocs[3], NOV + 3 * D, NOV + 5 * D)
    assert sc.service_credit_run(now=DEC - H) == 0  # November is not over
    assert sc.service_credit_run(now=DEC + H) == 1
    note = CreditNote.objects.get(kind=CreditNoteKind.SERVICE)
    # 2,880 of 432,000 node-minutes: 99.3333 %, tier 5 % beats pro rata (0.667 %).
    assert note.total == Decimal("5000000.00")
    assert note.period == dt.date(2026, 11, 1)
    assert note.invoice.period == dt.date(2026, 11, 1)
    assert note.number.startswith("CN-2026-")
    report = note.availability_report
    assert report.credit == note.total
    (figures,) = report.report["lines"]
    assert figures["in_service_minutes"] == "432000"
    assert figures["downtime_minutes"] == "2880"
    assert figures["availability"] == "99.3333"
    assert figures["tier"] == "5"
    assert figures["credit"] == "5000000.00"
    assert figures["incidents"][0]["incident"] == incident.pk
    assert figures["incidents"][0]["minutes"] == "2880"
    # One synchronous job over all the line's GPUs waits 48 h, then pays a 600 s restart; the
    # useful part is the model's fraction for the group (by hand: tests/billing/
    # test_compute_lost.py).
    gpus = 10 * line.cluster.gpus_per_node
    lost = figures["incidents"][0]["compute_lost"]
    assert lost["gpus"] == gpus
    assert lost["stalled_hours"] == "48.17"
    stalled = (Decimal(48) + Decimal(600) / 3600) * gpus
    assert Decimal(lost["gpu_hours_stalled"]) == stalled.quantize(Decimal("0.01"))
    fraction = sc.group_model(line.cluster, nodes=10).useful_fraction
    assert 0 < fraction < 1
    assert Decimal(lost["useful_gpu_hours_lost"]) == (stalled * Decimal(repr(fraction))).quantize(
        Decimal("0.01")
    )
    # October (closed, nothing happened) has its report too, and no note.
    october = AvailabilityReport.objects.get(lease=lease, period=dt.date(2026, 10, 1))
    assert october.credit == 0
    assert october.credit_note is None


def test_runs_again_issue_nothing_more():
    _, _, allocs = leased()
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    assert sc.service_credit_run(now=DEC + H) == 1
    assert sc.service_credit_run(now=DEC + H) == 0
    assert sc.service_credit_run(now=DEC + 2 * D) == 0
    assert CreditNote.objects.filter(kind=CreditNoteKind.SERVICE).count() == 1
    assert AvailabilityReport.objects.count() == 2  # October and November


def test_an_incident_reported_late_after_the_month_was_settled_changes_nothing():
    _, _, allocs = leased()
    assert sc.service_credit_run(now=DEC + H) == 0
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)  # recorded after the fact
    assert sc.service_credit_run(now=DEC + 2 * D) == 0


def test_planned_window_within_the_allowance_earns_nothing_late_one_does():
    lease, _, allocs = leased(nodes=10)
    for day, ahead, title in ((5, 10, "timely"), (15, 3, "late")):
        window = MaintenanceWindow.objects.create(
            title=title,
            scope="nodes",
            category="firmware",
            kind="planned",
            announced_at=NOV + (day - ahead) * D,
            starts_at=NOV + day * D,
            ends_at=NOV + day * D + 8 * H,
        )
        window.nodes.set([a.node for a in allocs[:5]])
    sc.service_credit_run(now=DEC + H)
    report = AvailabilityReport.objects.get(lease=lease, period=dt.date(2026, 11, 1))
    (figures,) = report.report["lines"]
    # Only the late window counts: 5 nodes × 480 min of 432,000: 99.4444 %, tier 5 %.
    assert figures["downtime_minutes"] == "2400"
    timely, late = figures["windows"]
    assert (timely["late"], timely["counted_minutes"]) == (False, "0")
    assert (late["late"], late["counted_minutes"]) == (True, "2400")
    assert report.credit_note.total == Decimal("5000000.00")


def test_a_month_without_an_issued_invoice_gets_a_report_but_no_note():
    lease, _, allocs = leased()
    lease_nov = lease.invoices.get(period=dt.date(2026, 11, 1))
    services.invoice_void(
        invoice=lease_nov, reason="test", resolution="waive", now=NOV + D, actor=None
    )
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    assert sc.service_credit_run(now=DEC + H) == 0
    report = AvailabilityReport.objects.get(lease=lease, period=dt.date(2026, 11, 1))
    assert report.credit_note is None
    assert report.report["uncredited"] == "5000000.00"


def test_the_database_refuses_a_second_service_note_for_the_month():
    _, _, allocs = leased()
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    sc.service_credit_run(now=DEC + H)
    note = CreditNote.objects.get(kind=CreditNoteKind.SERVICE)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditNote.objects.create(
            tenant=note.tenant,
            lease=note.lease,
            invoice=note.invoice,
            kind=CreditNoteKind.SERVICE,
            period=note.period,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        AvailabilityReport.objects.create(
            lease=note.lease,
            tenant=note.tenant,
            period=note.period,
            period_start=NOV,
            period_end=DEC,
            computed_at=DEC,
            in_service_us=0,
            downtime_us=0,
        )


def test_an_issued_notes_kind_and_month_are_frozen():
    _, _, allocs = leased()
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    sc.service_credit_run(now=DEC + H)
    note = CreditNote.objects.get(kind=CreditNoteKind.SERVICE)
    for change in ({"kind": CreditNoteKind.EARLY_END}, {"period": dt.date(2026, 10, 1)}):
        with pytest.raises(IntegrityError), transaction.atomic():
            CreditNote.objects.filter(pk=note.pk).update(**change)


def test_service_credit_is_announced(event_consumer, django_capture_on_commit_callbacks):
    received = event_consumer([DocumentEvent.SERVICE_CREDIT_ISSUED])
    _, _, allocs = leased()
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    with django_capture_on_commit_callbacks(execute=True):
        sc.service_credit_run(now=DEC + H)
    note = CreditNote.objects.get(kind=CreditNoteKind.SERVICE)
    (event,) = received
    assert event.subject_id == note.pk
    assert event.payload == {
        "tenant": note.tenant_id,
        "lease": note.lease_id,
        "number": note.number,
        "period": "2026-11-01",
    }


def test_service_credits_do_not_trigger_rent_corrections():
    lease, _, allocs = leased()
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    sc.service_credit_run(now=DEC + H)
    run = services.billing_run(now=DEC + 2 * D)
    assert run.credit_notes_issued == 0
    assert not lease.invoices.filter(kind="supplementary").exists()


def test_month_to_date_availability_without_writing():
    lease, _, allocs = leased()
    fleet.incident_open(node=allocs[0].node, category="gpu", source="operator", now=NOV + 9 * D)
    figures = sc.lease_availability(lease, dt.date(2026, 11, 1), now=NOV + 10 * D)
    assert figures["final"] is False
    (line,) = figures["lines"]
    assert line["in_service_minutes"] == str(10 * 10 * 1440)
    assert line["downtime_minutes"] == "1440"
    assert not AvailabilityReport.objects.exists()


def test_a_month_not_yet_invoiced_waits_for_the_billing_run():
    _, (line,) = lease_with_lines(
        commencement_date=dt.date(2026, 11, 1), term_days=365, with_nodes=True
    )
    down(Allocation.objects.filter(line=line).first(), NOV + 3 * D, NOV + 5 * D)
    assert sc.service_credit_run(now=DEC + H) == 0
    assert not AvailabilityReport.objects.exists()
    services.billing_run(now=DEC + H)
    assert sc.service_credit_run(now=DEC + H) == 1


def test_service_credit_webhook_carries_the_report(settings, django_capture_on_commit_callbacks):
    from webhooks import services as webhooks
    from webhooks.models import WebhookDelivery

    settings.WEBHOOK_DISPATCH_ON_EVENT = False  # queued, not sent: the payload is what counts
    lease, _, allocs = leased()
    endpoint = webhooks.webhook_endpoint_create(
        tenant=lease.tenant,
        url="https://hooks.example.com/landlord",
        event_types=["service_credit.issued", "credit_note.issued"],
    )
    down(allocs[0], NOV + 3 * D, NOV + 5 * D)
    with django_capture_on_commit_callbacks(execute=True):
        sc.service_credit_run(now=DEC + H)
    note = CreditNote.objects.get(kind=CreditNoteKind.SERVICE)
    by_type = {d.event_type: d for d in WebhookDelivery.objects.filter(endpoint=endpoint)}
    assert set(by_type) == {"service_credit.issued", "credit_note.issued"}
    service = by_type["service_credit.issued"]
    assert service.event_id == f"evt_sc_{note.pk}"
    data = service.payload["data"]
    assert data["kind"] == "service"
    assert data["period"] == "2026-11-01"
    assert data["availability"]["lines"][0]["downtime_minutes"] == "2880"
