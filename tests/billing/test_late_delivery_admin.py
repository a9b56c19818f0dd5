"""The operator's late-delivery cancellation: a confirmation page showing the money effect
(each invoice's credit, who is told, the dates), then the cancellation as the operator;
permission-checked."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.choices import CreditNoteKind
from billing.models import CreditNote
from clusters.models import Node
from common.money import format_money
from leasing.choices import LineStatus
from leasing.events import EventKind
from leasing.models import Allocation, LeaseEvent, LeaseLine
from tests.factories.billing import lease_with_lines
from tests.factories.clusters import ClusterFactory
from tests.factories.leasing import UserFactory

pytestmark = pytest.mark.django_db

RATE = Decimal("3000000.00")


@pytest.fixture
def late():
    """A lease commenced 40 days ago (UTC), one line of 100 nodes with 94 accepted; its
    months so far invoiced."""
    today = timezone.now().astimezone(dt.UTC).date()
    lease, (line,) = lease_with_lines(
        commencement_date=today - dt.timedelta(days=40), rates=(RATE,), term_days=365
    )
    line.cluster = ClusterFactory()
    line.node_count = 100
    line.save(update_fields=["cluster", "node_count"])
    nodes = Node.objects.bulk_create(
        Node(cluster=line.cluster, hostname=f"adm-{i}") for i in range(100)
    )
    Allocation.objects.bulk_create(
        Allocation(
            line=line,
            node=node,
            starts_at=lease.commencement,
            ends_at=lease.term_end,
            accepted_at=lease.commencement if i < 94 else None,
        )
        for i, node in enumerate(nodes)
    )
    services.lease_bill(lease_id=lease.pk, now=lease.commencement + dt.timedelta(hours=1))
    return lease, line


def operator(*perms):
    user = UserFactory(username="op-" + "-".join(p.split(".")[1] for p in perms), is_staff=True)
    for perm in perms:
        label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=label, codename=codename)
        )
    return user


READ = ("leasing.view_lease", "billing.view_creditnote")
WRITE = (*READ, "leasing.change_lease", "billing.add_creditnote")


def test_the_page_shows_the_money_then_cancels_as_the_operator(client, late):
    lease, line = late
    user = operator(*WRITE, "leasing.view_leaseline")
    client.force_login(user)
    url = reverse("admin:billing_cancel_late_delivery", args=[line.pk])
    # The lease page links to it, from the line.
    lease_page = client.get(reverse("admin:leasing_lease_change", args=[lease.pk]))
    assert url in lease_page.content.decode()
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    invoices = list(lease.invoices.order_by("period"))
    assert invoices
    for invoice in invoices:
        assert invoice.number in text
    preview = page.context["preview"]
    assert preview.total == sum(c.total for c in preview.credits) > 0
    assert page.context["total"].replace(",", "").split()[0].lstrip("$") in text.replace(",", "")
    assert "94 of 100" in text
    labelled = LeaseLine.objects.select_related("lease__tenant", "cluster").get(pk=line.pk)
    assert labelled.label in text
    assert f"line {line.pk}" not in text
    for credit in preview.credits:
        for cl in credit.lines:
            assert format_money(cl.amount, credit.invoice.currency) in text
    assert lease.tenant.name in text
    assert "line.cancelled_late_delivery" in text
    assert not CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).exists()
    # Confirmed: cancelled as this operator, credited exactly what the page showed.
    done = client.post(url, {"reason": "ticket 42", "apply": "1"})
    assert done.status_code == 302
    notes = CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION)
    assert sum(n.total for n in notes) == preview.total
    assert {n.issued_by for n in notes} == {user}
    event = LeaseEvent.objects.get(lease=lease, kind=EventKind.LINE_CANCELLED)
    assert (event.actor, event.actor_party, event.reason) == (user, "operator", "ticket 42")
    line.refresh_from_db()
    assert line.status == LineStatus.CANCELLED
    # A second confirmation is refused and writes nothing.
    again = client.post(url, {"apply": "1"}, follow=True)
    assert "line_already_cancelled" in again.content.decode()
    assert CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).count() == notes.count()


def test_a_reader_sees_the_page_but_cannot_act(client, late):
    _, line = late
    client.force_login(operator(*READ))
    url = reverse("admin:billing_cancel_late_delivery", args=[line.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"apply": "1"}).status_code == 403
    line.refresh_from_db()
    assert line.status == LineStatus.OPEN
    assert not CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).exists()


def test_staff_without_permissions_is_refused(client, late):
    _, line = late
    client.force_login(operator())
    url = reverse("admin:billing_cancel_late_delivery", args=[line.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"apply": "1"}).status_code == 403
    assert not CreditNote.objects.filter(kind=CreditNoteKind.CANCELLATION).exists()


def test_a_line_not_eligible_shows_why_and_offers_nothing(client, late):
    lease, line = late
    Allocation.objects.filter(line=line).update(accepted_at=lease.commencement)
    client.force_login(operator(*WRITE))
    page = client.get(reverse("admin:billing_cancel_late_delivery", args=[line.pk]))
    assert page.status_code == 200
    assert "Not cancellable now" in page.content.decode()
    assert 'name="apply"' not in page.content.decode()


def test_the_lease_page_counts_accepted_nodes_in_one_query_for_all_lines(client, late):
    """The lines' late-delivery column reads every line's accepted nodes from the lines' own
    query: a lease with more lines costs no more queries."""
    lease, line = late
    client.force_login(operator(*WRITE, "leasing.view_leaseline"))
    url = reverse("admin:leasing_lease_change", args=[lease.pk])
    client.get(url)  # warm caches (content types, permissions)
    with CaptureQueriesContext(connection) as one_line:
        page = client.get(url)
    assert "94/100 accepted" in page.content.decode()
    for n in range(3):
        extra = LeaseLine.objects.create(
            lease=lease,
            cluster=line.cluster,
            node_count=10,
            monthly_rate=RATE,
        )
        node = Node.objects.create(cluster=line.cluster, hostname=f"adm-extra-{n}")
        Allocation.objects.create(
            line=extra,
            node=node,
            starts_at=lease.commencement,
            ends_at=lease.term_end,
            accepted_at=lease.commencement,
        )
    with CaptureQueriesContext(connection) as four_lines:
        page = client.get(url)
    assert page.content.decode().count("1/10 accepted") == 3
    assert len(four_lines) == len(one_line)
