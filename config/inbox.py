"""The operator's inbox: what needs doing today, each item with a link to where it is done.

One `Item` per kind of work, shown only to who may see that kind (its view permission), with
how many, the oldest or most urgent, and what is at stake. A bounded number of queries per
kind, whatever the size of the fleet: counts and the first few rows, never every row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Max, Min, Model, Sum
from django.urls import reverse

from billing import dunning
from billing.choices import OPEN_STATUSES
from billing.models import Application, Invoice
from clusters.choices import IncidentStatus, MaintenanceStatus
from clusters.models import Incident, MaintenanceWindow
from common.display import day, instant
from common.models import EventDelivery, EventDeliveryStatus
from common.money import format_money
from leasing.choices import HOLDING, SIGNED, DeferralStatus, LeaseStatus
from leasing.models import Allocation, Lease, MaintenanceDeferral
from leasing.rules import latest_useful_notice_date
from webhooks.choices import WebhookDeliveryStatus
from webhooks.models import WebhookDelivery

SHOWN = 5  # rows named per item
NOTICE_HORIZON_DAYS = 14
DELIVERY_HORIZON_DAYS = 7
MAINTENANCE_HORIZON_DAYS = 7


@dataclass
class Item:
    key: str
    title: str
    count: int
    url: str
    detail: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)  # (label, url)
    urgent: bool = False


def admin_url(name: str, query: str = "") -> str:
    """The admin page `name` (e.g. `leasing_lease_changelist`) with an optional query string."""
    return reverse(f"admin:{name}") + (f"?{query}" if query else "")


def change_url(obj: Model) -> str:
    """The admin change page of `obj`."""
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def lease_requests(now: dt.datetime) -> Item:
    drafts = Lease.objects.filter(status=LeaseStatus.DRAFT).select_related("tenant")
    first = list(drafts.order_by("created_at")[:SHOWN])
    return Item(
        "lease-requests",
        "Lease requests to approve or reject",
        drafts.count(),
        admin_url("leasing_lease_changelist", "status__exact=draft"),
        rows=[
            (f"{d.number} · {d.tenant.name} · from {day(d.commencement_date)}", change_url(d))
            for d in first
        ],
    )


def notice_deadlines(now: dt.datetime) -> Item:
    """Signed leases whose latest useful notice date (to end before the term) is near."""
    today = now.astimezone(dt.UTC).date()
    horizon = today + dt.timedelta(days=NOTICE_HORIZON_DAYS)
    # The latest useful date is the term end's local date − (notice_days + 2): only leases whose
    # term ends within the horizon plus the longest notice (+ 2 days, + a day of zones) can fall
    # due, so only those are read.
    signed = Lease.objects.filter(status__in=SIGNED, effective_end__isnull=True)
    longest = signed.aggregate(m=Max("notice_days"))["m"] or 0
    candidates = signed.filter(
        term_end__lt=now + dt.timedelta(days=NOTICE_HORIZON_DAYS + longest + 4)
    ).select_related("tenant")
    due = []
    for lease in candidates.order_by("term_end"):
        last = latest_useful_notice_date(lease.term_end, lease.notice_days, lease.contract_timezone)
        if today <= last <= horizon:
            due.append((last, lease))
    due.sort(key=lambda pair: pair[0])
    return Item(
        "notice-deadlines",
        f"Last useful notice dates in the next {NOTICE_HORIZON_DAYS} days",
        len(due),
        reverse("operator:revenue-at-risk"),
        detail="Give notice by then, or the lease runs to its term.",
        rows=[
            (f"{lease.number} · {lease.tenant.name} · by {day(last)}", change_url(lease))
            for last, lease in due[:SHOWN]
        ],
        urgent=any(last <= today + dt.timedelta(days=3) for last, _ in due),
    )


def acceptances_due(now: dt.datetime) -> Item:
    pending = Allocation.objects.filter(
        accepted_at__isnull=True,
        line__lease__status__in=HOLDING,
        starts_at__lte=now + dt.timedelta(days=DELIVERY_HORIZON_DAYS),
        ends_at__gt=now,
    )
    by_lease = list(
        pending.values("line__lease__number", "line__lease__tenant__name")
        .annotate(n=Count("pk"), first=Min("starts_at"))
        .order_by("first")[:SHOWN]
    )
    return Item(
        "acceptances-due",
        f"Nodes to hand over and accept (starting within {DELIVERY_HORIZON_DAYS} days)",
        pending.count(),
        reverse("operator:fleet-handover"),
        rows=[
            (
                f"{r['line__lease__number']} · {r['line__lease__tenant__name']} · "
                f"{r['n']} nodes from {instant(r['first'])}",
                admin_url("leasing_allocation_changelist", f"q={r['line__lease__number']}"),
            )
            for r in by_lease
        ],
        urgent=pending.filter(starts_at__lte=now).exists(),
    )


def open_incidents(now: dt.datetime) -> Item:
    open_ = Incident.objects.filter(status=IncidentStatus.OPEN).select_related("node")
    first = list(open_.order_by("opened_at")[:SHOWN])
    return Item(
        "incidents",
        "Open incidents",
        open_.count(),
        reverse("operator:fleet-incidents"),
        rows=[
            (
                f"{i.node.hostname} · {i.get_category_display()} · since {instant(i.opened_at)}",
                reverse("operator:fleet-node", args=[i.node.hostname]),
            )
            for i in first
        ],
        urgent=bool(first) and first[0].opened_at <= now - dt.timedelta(hours=24),
    )


def maintenance_decisions(now: dt.datetime) -> Item:
    asked = MaintenanceDeferral.objects.filter(status=DeferralStatus.REQUESTED).select_related(
        "window", "tenant"
    )
    starting = MaintenanceWindow.objects.filter(
        status=MaintenanceStatus.SCHEDULED,
        starts_at__lte=now + dt.timedelta(days=MAINTENANCE_HORIZON_DAYS),
    )
    first = list(asked.order_by("window__starts_at")[:SHOWN])
    return Item(
        "maintenance",
        "Maintenance deferral requests to answer",
        asked.count(),
        admin_url("leasing_maintenancedeferral_changelist", "status__exact=requested"),
        detail=(
            f"{starting.count()} window(s) start within {MAINTENANCE_HORIZON_DAYS} days: "
            "see the maintenance calendar."
        ),
        rows=[
            (
                f"{d.tenant.name} asks to move “{d.window.title}” to {instant(d.requested_start)}",
                change_url(d),
            )
            for d in first
        ],
        urgent=any(d.window.starts_at <= now + dt.timedelta(days=2) for d in first),
    )


def overdue_invoices(now: dt.datetime) -> Item:
    """Open invoices past due, partly paid ones included; the figure is what they still owe
    (their totals less what was applied to them)."""
    overdue = Invoice.objects.filter(status__in=OPEN_STATUSES, is_overdue=True)
    billed = overdue.aggregate(t=Sum("total"))["t"] or Decimal(0)
    paid = Application.objects.filter(invoice__in=overdue).aggregate(t=Sum("amount"))["t"]
    owed = billed - (paid or Decimal(0))
    first = list(overdue.select_related("tenant").order_by("due_at")[:SHOWN])
    statuses = ",".join(OPEN_STATUSES)
    return Item(
        "overdue",
        "Overdue invoices",
        overdue.count(),
        admin_url("billing_invoice_changelist", f"is_overdue__exact=1&status__in={statuses}"),
        detail=f"{format_money(owed)} owed in all." if first else "",
        rows=[
            (
                f"{i.number} · {i.tenant.name} · {format_money(i.total, i.currency)} "
                f"due {instant(i.due_at)}",
                change_url(i),
            )
            for i in first
        ],
        urgent=bool(first),
    )


def dunning_escalations(now: dt.datetime) -> Item:
    """Tenants whose dunning has escalated (the 30-day reminder, copied to their legal
    contacts) on invoices still open: each links to its open invoices, where a payment is
    recorded or an invoice voided (docs/rules/receivables.md, "Dunning")."""
    escalated = dunning.escalations()
    tenants = (
        escalated.values("invoice__tenant_id", "invoice__tenant__name")
        .annotate(n=Count("invoice_id", distinct=True), first=Min("at"))
        .order_by("first", "invoice__tenant__name")
    )
    first = list(tenants[:SHOWN])
    return Item(
        "dunning-escalations",
        "Tenants whose dunning has escalated",
        escalated.values("invoice__tenant_id").distinct().count(),
        reverse("billing:receivables"),
        detail="30 days past due, their legal contacts copied: call, take payment or agree a plan.",
        rows=[
            (
                f"{r['invoice__tenant__name']} · {r['n']} invoice(s) · "
                f"escalated {instant(r['first'])}",
                admin_url(
                    "billing_invoice_changelist", f"tenant__id__exact={r['invoice__tenant_id']}"
                ),
            )
            for r in first
        ],
        urgent=bool(first),
    )


def failed_jobs(now: dt.datetime) -> Item:
    failed = EventDelivery.objects.filter(status=EventDeliveryStatus.FAILED)
    return Item(
        "failed-events",
        "Failed background work (domain events)",
        failed.count(),
        admin_url("common_eventdelivery_changelist", "status__exact=failed"),
        detail="Each failed delivery can be retried from its page once the cause is fixed.",
        urgent=failed.exists(),
    )


def failed_webhooks(now: dt.datetime) -> Item:
    failed = WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.FAILED)
    return Item(
        "failed-webhooks",
        "Webhook deliveries that gave up",
        failed.count(),
        admin_url("webhooks_webhookdelivery_changelist", "status__exact=failed"),
    )


# (view permission, builder), in the order the inbox shows them.
SOURCES: list[tuple[str, Callable[[dt.datetime], Item]]] = [
    ("leasing.view_lease", lease_requests),
    ("leasing.view_lease", notice_deadlines),
    ("leasing.view_allocation", acceptances_due),
    ("clusters.view_incident", open_incidents),
    ("leasing.view_maintenancedeferral", maintenance_decisions),
    ("billing.view_invoice", overdue_invoices),
    ("billing.view_reminder", dunning_escalations),
    ("common.view_eventdelivery", failed_jobs),
    ("webhooks.view_webhookdelivery", failed_webhooks),
]


def inbox(user: User | AnonymousUser, now: dt.datetime) -> list[Item]:
    """The items this user may see, those with work first (urgent before the rest)."""
    items = [build(now) for perm, build in SOURCES if user.has_perm(perm)]
    return sorted(items, key=lambda i: (i.count == 0, not i.urgent))
