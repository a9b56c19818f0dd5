"""Concurrent late-delivery cancellations of one line, in separate processes on PostgreSQL:
one cancels and credits, the others get `line_already_cancelled` and write nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing import ledger, services
from billing.choices import CreditNoteKind
from billing.models import CreditNote, CreditNoteLine
from clusters.models import Node
from leasing.choices import LineStatus
from leasing.events import EventKind
from leasing.models import Allocation, LeaseEvent
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import ClusterFactory
from tests.processes import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOV = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
RATE = Decimal("3000000.00")


def test_concurrent_cancellations_credit_once():
    lease, (line,) = lease_with_lines(commencement_date=dt.date(2026, 11, 1), rates=(RATE,))
    line.cluster = ClusterFactory()
    line.node_count = 100
    line.save(update_fields=["cluster", "node_count"])
    nodes = Node.objects.bulk_create(
        Node(cluster=line.cluster, hostname=f"cc-{i}") for i in range(100)
    )
    Allocation.objects.bulk_create(
        Allocation(
            line=line,
            node=node,
            starts_at=NOV,
            ends_at=lease.term_end,
            accepted_at=NOV if i < 94 else None,
        )
        for i, node in enumerate(nodes)
    )
    services.billing_run(now=NOV + dt.timedelta(hours=1))
    services.billing_run(now=NOV + dt.timedelta(days=24))
    workers = 5
    at = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC).isoformat()
    results = run_together(
        "tests.billing.workers",
        [["cancel_late", str(lease.tenant_id), str(lease.pk), str(line.pk), at]] * workers,
    )
    assert sorted(r["ok"] for r in results) == [False] * (workers - 1) + [True], results
    assert {r["code"] for r in results if not r["ok"]} == {"line_already_cancelled"}
    (winner,) = [r for r in results if r["ok"]]
    notes = CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION)
    assert sorted(notes.values_list("pk", flat=True)) == sorted(winner["notes"])
    assert notes.count() == 2  # November and December
    credited = CreditNoteLine.objects.filter(lease_line=line).aggregate(s=Sum("amount"))["s"]
    assert credited == 2 * RATE
    assert LeaseEvent.objects.filter(kind=EventKind.LINE_CANCELLED).count() == 1
    line.refresh_from_db()
    assert line.status == LineStatus.CANCELLED
    assert sum(ledger.balances().values()) == 0
