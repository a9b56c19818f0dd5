"""Irreversible admin actions confirm first, with their money effect and dates: giving an
operator notice, voiding an invoice, recording a payment. Figures are computed here by hand;
looking writes nothing, confirming acts once and records who, a user without the permission is
refused, and an action that would change nothing is not offered."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from billing import payments, services
from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import Application, Invoice, Payment
from clusters.models import Node
from common.money import format_money
from leasing.choices import Party
from leasing.models import Notice
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import TenantFactory
from tests.operator.test_permissions import APPROVE, staff

pytestmark = pytest.mark.django_db

M = Decimal("1000000.00")


def first_of_month(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` after `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def post_action(client, model: str, name: str, objs, **extra):
    return client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": name, "_selected_action": [o.pk for o in objs], **extra},
        follow=True,
    )


# --- operator notice from the lease admin ---------------------------------------------------------


@pytest.fixture
def notice_world():
    """An active lease at $3,000,000.00 a month whose term ends on a first of the month a year
    after it began, and an end asked for on the first of the month five months from now (later
    than the 90-day minimum): the notice takes back whole months only."""
    today = timezone.now().date()
    start = first_of_month(today, -2)
    term_end = first_of_month(start, 12)
    lease, _ = lease_with_lines(
        commencement_date=start,
        term_days=(term_end - start).days,
        rates=(Decimal("1000000.00"), Decimal("2000000.00")),
        with_nodes=True,
    )
    requested = first_of_month(today, 5)
    months = (term_end.year * 12 + term_end.month) - (requested.year * 12 + requested.month)
    return lease, requested, months


def test_notice_confirmation_shows_rent_forgone_dates_and_who_is_told(client, notice_world):
    lease, requested, months = notice_world
    client.force_login(staff("notice-a", "capacity", perms=(APPROVE,)))
    page = post_action(
        client,
        "leasing_lease",
        "give_operator_notice",
        [lease],
        preview="1",
        requested_end_date=requested.isoformat(),
    )
    html = page.content.decode()
    # Two lines, each forgoing its whole months from the requested end to the term end.
    assert format_money(Decimal("3000000.00") * months) in html
    assert format_money(Decimal("1000000.00") * months) in html
    assert format_money(Decimal("2000000.00") * months) in html
    assert f"{requested:%Y-%m-%d} 00:00" in html  # back from
    assert lease.tenant.name in html
    assert "notice.received" in html
    assert 'data-testid="confirm-notice"' in html
    assert not Notice.objects.filter(lease=lease).exists()  # looking writes nothing


def test_notice_is_given_once_as_the_operator(client, notice_world):
    lease, requested, _ = notice_world
    user = staff("notice-b", "capacity", perms=(APPROVE,))
    client.force_login(user)
    form = {"apply": "1", "requested_end_date": requested.isoformat(), "reason": "reclaim"}
    post_action(client, "leasing_lease", "give_operator_notice", [lease], **form)
    notice = Notice.objects.get(lease=lease)
    assert (notice.given_by, notice.given_by_user) == (Party.OPERATOR, user)
    assert LogEntry.objects.filter(user=user, object_id=str(lease.pk)).count() == 1
    # The same confirmation posted again: the lease now ends at the requested end, so a second
    # notice would change nothing and is not given.
    again = post_action(client, "leasing_lease", "give_operator_notice", [lease], **form)
    assert Notice.objects.filter(lease=lease).count() == 1
    assert any("change nothing" in str(m) for m in again.context["messages"])
    page = post_action(
        client,
        "leasing_lease",
        "give_operator_notice",
        [lease],
        preview="1",
        requested_end_date=requested.isoformat(),
    ).content.decode()
    assert 'data-testid="notice-nothing"' in page
    assert 'data-testid="confirm-notice"' not in page


def test_notice_needs_the_approve_permission(client, notice_world):
    lease, requested, _ = notice_world
    client.force_login(staff("notice-c", "capacity"))
    response = post_action(
        client,
        "leasing_lease",
        "give_operator_notice",
        [lease],
        apply="1",
        requested_end_date=requested.isoformat(),
    )
    assert 'data-testid="notice-effects"' not in response.content.decode()
    assert not Notice.objects.filter(lease=lease).exists()


# --- voiding an invoice -----------------------------------------------------------------------


@pytest.fixture
def two_invoices():
    """A tenant with September's invoice ($1,000,000.00) and October's ($500,000.00)."""
    tenant = TenantFactory()
    sep, _ = lease_with_lines(
        tenant=tenant, commencement_date=dt.date(2026, 9, 1), rates=(M,), term_days=30
    )
    oct_, _ = lease_with_lines(
        tenant=tenant,
        commencement_date=dt.date(2026, 10, 1),
        rates=(Decimal("500000.00"),),
        term_days=31,
    )
    services.billing_run(now=dt.datetime(2026, 9, 1, tzinfo=dt.UTC))
    services.billing_run(now=dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    rent = Invoice.objects.filter(kind=InvoiceKind.RENT)
    return tenant, rent.get(lease=sep), rent.get(lease=oct_)


def test_void_confirmation_shows_the_amount_the_tenant_and_what_changes(client, two_invoices):
    tenant, sep, oct_ = two_invoices
    client.force_login(staff("void-a", "finance"))
    page = post_action(client, "billing_invoice", "void_selected", [sep, oct_])
    html = page.content.decode()
    assert "$1,500,000.00" in html  # both voidable: 1,000,000.00 + 500,000.00
    assert "$1,000,000.00" in html
    assert "$500,000.00" in html
    assert tenant.name in html
    assert "revenue forgone" in html
    assert 'data-testid="confirm-void"' in html
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.ISSUED}


def test_void_acts_once_and_records_who(client, two_invoices):
    _, sep, _ = two_invoices
    user = staff("void-b", "finance")
    client.force_login(user)
    form = {"apply": "1", "reason": "wrong entity", "resolution": "waive"}
    post_action(client, "billing_invoice", "void_selected", [sep], **form)
    sep.refresh_from_db()
    assert (sep.status, sep.voided_by) == (InvoiceStatus.VOID, user)
    again = post_action(client, "billing_invoice", "void_selected", [sep], **form)
    assert any("invoice_not_issued" in str(m) for m in again.context["messages"])
    # Nothing left to void: the page says so and offers nothing.
    html = post_action(client, "billing_invoice", "void_selected", [sep]).content.decode()
    assert 'data-testid="void-nothing"' in html
    assert 'data-testid="confirm-void"' not in html


def test_an_invoice_with_money_applied_is_not_offered_for_void(client, two_invoices):
    tenant, sep, _ = two_invoices
    payments.payment_record(
        tenant=tenant,
        amount="10.00",
        value_date=dt.date(2026, 9, 2),
        reference="W",
        invoices=[sep.pk],
    )
    client.force_login(staff("void-c", "finance"))
    html = post_action(client, "billing_invoice", "void_selected", [sep]).content.decode()
    assert "not possible" in html
    assert "invoice_not_issued" in html  # partly paid
    assert 'data-testid="confirm-void"' not in html


def test_void_is_refused_without_the_permission(client, two_invoices):
    _, sep, _ = two_invoices
    client.force_login(staff("void-d", "viewer"))
    form = {"apply": "1", "reason": "x", "resolution": "waive"}
    response = post_action(client, "billing_invoice", "void_selected", [sep], **form)
    assert 'data-testid="void-effects"' not in response.content.decode()
    sep.refresh_from_db()
    assert sep.status == InvoiceStatus.ISSUED


# --- recording a payment ----------------------------------------------------------------------


def payment_form(tenant, amount: str, **extra):
    return {
        "tenant": tenant.pk,
        "amount": amount,
        "currency": "USD",
        "value_date": "2026-11-02",
        "reference": "WIRE-77",
        "method": "wire",
        **extra,
    }


def test_payment_confirmation_shows_each_invoice_oldest_due_first(client, two_invoices):
    tenant, sep, oct_ = two_invoices
    client.force_login(staff("pay-a", "finance"))
    page = client.post(reverse("admin:billing_payment_add"), payment_form(tenant, "1200000.00"))
    html = page.content.decode()
    plan = page.context["rows"]
    # September is due first: paid in full; October gets the remaining $200,000.00.
    assert [(r["invoice"], r["balance"], r["applied"], r["after"]) for r in plan] == [
        (sep, "$1,000,000.00", "$1,000,000.00", "$0.00"),
        (oct_, "$500,000.00", "$200,000.00", "$300,000.00"),
    ]
    assert "$300,000.00" in html
    assert page.context["unapplied"] == "$0.00"
    assert not Payment.objects.exists()  # looking writes nothing
    over = client.post(reverse("admin:billing_payment_add"), payment_form(tenant, "1750000.00"))
    assert over.context["unapplied"] == "$250,000.00"


def test_payment_is_recorded_once_as_confirmed(client, two_invoices):
    tenant, sep, oct_ = two_invoices
    user = staff("pay-b", "finance")
    client.force_login(user)
    url = reverse("admin:billing_payment_add")
    shown = client.post(url, payment_form(tenant, "1200000.00"))
    confirm = payment_form(tenant, "1200000.00", confirm="1", plan=shown.context["plan"])
    done = client.post(url, confirm)
    assert done.status_code == 302
    payment = Payment.objects.get()
    assert payment.recorded_by == user
    assert dict(Application.objects.values_list("invoice_id", "amount")) == {
        sep.pk: M,
        oct_.pk: Decimal("200000.00"),
    }
    # The same confirmation again is stale (a payment was recorded since): shown, not recorded.
    again = client.post(url, confirm)
    assert again.status_code == 200
    assert again.context["rows"][0]["balance"] == "$300,000.00"
    assert Payment.objects.count() == 1


def test_payment_is_refused_without_the_permission(client, two_invoices):
    tenant, _, _ = two_invoices
    client.force_login(staff("pay-c", "viewer"))
    url = reverse("admin:billing_payment_add")
    assert client.post(url, payment_form(tenant, "10.00")).status_code == 403
    assert client.post(url, payment_form(tenant, "10.00", confirm="1")).status_code == 403
    assert not Payment.objects.exists()


def test_the_plan_is_the_services_own_application(two_invoices):
    """The dry run and the recording apply the same way (one rule, `payments._plan`)."""
    tenant, _, _ = two_invoices
    plan = payments.payment_plan(tenant=tenant, amount="1200000.00")
    payments.payment_record(
        tenant=tenant, amount="1200000.00", value_date=dt.date(2026, 11, 2), reference="W"
    )
    assert [(a.invoice.pk, a.amount) for a in plan.applications] == list(
        Application.objects.order_by("invoice__due_at").values_list("invoice_id", "amount")
    )


# --- bulk inventory changes ---------------------------------------------------------------------


def test_a_bulk_change_to_held_nodes_only_is_not_offered(client, notice_world):
    """The guarded bulk change (clusters/admin.py) shows the leases and rent it touches; when
    every node selected is held, nothing would change and the confirmation is disabled."""
    lease, _, _ = notice_world
    held = list(Node.objects.filter(allocations__line__lease=lease).distinct()[:3])
    client.force_login(staff("bulk-a", "capacity"))
    html = post_action(client, "clusters_node", "move_to_cluster", held).content.decode()
    assert lease.number in html
    assert format_money(Decimal("1000000.00")) in html  # the monthly rent of the line touched
    assert 'data-testid="confirm-bulk" disabled' in html


# --- one money format in the admin --------------------------------------------------------------


def test_admin_lists_and_pages_show_money_one_way(client, two_invoices):
    """Totals, lines, payments, applications: symbol, thousands separators, cents; never the
    bare decimal."""
    tenant, sep, _ = two_invoices
    payments.payment_record(
        tenant=tenant, amount="1200000.00", value_date=dt.date(2026, 11, 2), reference="W-9"
    )
    client.force_login(staff("money-a", "viewer"))
    payment = Payment.objects.get()
    pages = {
        reverse("admin:billing_invoice_changelist"): "$1,000,000.00",
        reverse("admin:billing_invoice_change", args=[sep.pk]): "$1,000,000.00",  # total, line
        reverse("admin:billing_payment_changelist"): "$1,200,000.00",
        reverse("admin:billing_payment_change", args=[payment.pk]): "$200,000.00",  # applied
        reverse("admin:billing_application_changelist"): "$1,000,000.00",
        reverse("admin:leasing_lease_change", args=[sep.lease_id]): "$1,000,000.00",  # line
    }
    for url, amount in pages.items():
        html = client.get(url).content.decode()
        assert amount in html, url
        for raw in ("1000000.00", "1200000.00", "200000.00"):
            assert raw not in html, (url, raw)
