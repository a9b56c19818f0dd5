"""Operator admin for leasing: tenants, listings, leases, notices, events, capacity per cluster.

Leases, notices and events are read-only here: every change goes through `leasing.services`
via the admin actions, which report success or the refusal's code per row. Changelists keep a
bounded number of queries (select_related + aggregate annotations instead of per-row lookups).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from operator import attrgetter
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Count, Max, Min, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from clusters.models import ALLOCATABLE_STATUSES, Cluster, Node
from common.access import operator_page
from common.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_form_page,
    history_table,
    money_display,
    per_row_action,
    run_per_row,
)
from common.contract_time import local_date, local_midnight
from common.money import ZERO, format_money

from . import late_delivery, notice_effects, notices, rules, services
from .choices import LeaseStatus, NoticeOutcome, NoticeStatus, Party
from .models import Allocation, Lease, LeaseEvent, LeaseLine, Listing, Notice, Tenant
from .selectors import held_at, held_during, held_node_ids

CAPACITY_PAGE_SIZE = 50


# --- tenants and listings ------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Tenant.members.through
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "standing", "member_count", "lease_count"]
    list_filter = ["standing"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    # Computed by billing from the tenant's aging (docs/rules/receivables.md): never typed in.
    readonly_fields = ["standing"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_members=Count("memberships", distinct=True),
                n_leases=Count("leases", distinct=True),
            )
        )

    @admin.display(description="members", ordering="n_members")
    def member_count(self, obj):
        return obj.n_members

    @admin.display(description="leases", ordering="n_leases")
    def lease_count(self, obj):
        return obj.n_leases


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "cluster",
        "node_count",
        "earliest_start",
        "rate_per_node",
        "status",
        "visibility",
        "private_tenant",
    ]
    list_filter = ["status", "visibility", "cluster__site"]
    search_fields = ["title", "cluster__name", "cluster__slug"]
    list_select_related = ["cluster__site", "private_tenant"]
    raw_id_fields = ["cluster", "private_tenant"]
    readonly_fields = ["status", "history"]
    actions = ["publish", "withdraw"]
    rate_per_node = money_display("monthly_rate_per_node", "monthly rate per node")

    publish = per_row_action(
        "Publish selected listings",
        "Published",
        lambda obj, user: services.listing_publish(listing=obj, actor=user),
        permissions=["change"],
    )
    withdraw = per_row_action(
        "Withdraw selected listings",
        "Withdrawn",
        lambda obj, user: services.listing_withdraw(listing=obj, actor=user),
        permissions=["change"],
    )

    @admin.display(description="history")
    def history(self, obj):
        """Who published or withdrew the listing, and when."""
        if not obj.pk:
            return "—"
        return history_table(
            (e.at, e.get_kind_display(), f"by {e.actor or 'the system'}")
            for e in obj.events.select_related("actor")
        )


# --- leases ---------------------------------------------------------------------------------------


class LeaseLineInline(ReadOnlyInline):
    model = LeaseLine
    show_change_link = True  # the line's own page: its nodes and history
    fields = ["cluster", "node_count", "rate", "status", "effective_end", "late_delivery"]
    readonly_fields = cast(list[str], fields)  # names only (the stubs type `fields` wider)
    rate = money_display("monthly_rate", "monthly rate", currency=attrgetter("lease.currency"))

    def get_queryset(self, request):
        lines = super().get_queryset(request).select_related("cluster__site", "lease")
        # Every line's accepted nodes in the same query, not one count per line.
        return late_delivery.with_accepted(lines, timezone.now())

    @admin.display(description="late delivery")
    def late_delivery(self, obj: LeaseLine) -> str:
        """Whether the line may be cancelled for late delivery now and, if so, the way to the
        confirmation page. That page is billing's (it issues the credit notes); it is named by
        its URL, not imported: leasing does not depend on billing."""
        figures = late_delivery.eligibility(
            obj, now=timezone.now(), accepted=getattr(obj, "accepted_now", None)
        )
        if not figures.eligible:
            return f"{figures.accepted}/{figures.nodes} accepted"
        return format_html(
            '{}/{} accepted · <a href="{}">Cancel for late delivery…</a>',
            figures.accepted,
            figures.nodes,
            reverse("admin:billing_cancel_late_delivery", args=[obj.pk]),
        )


class NoticeInline(ReadOnlyInline):
    model = Notice
    fields = [
        "given_by",
        "notice_date",
        "requested_end",
        "effective_end",
        "outcome",
        "status",
        "withdrawal_requested_by",
        "reason",
    ]
    readonly_fields = cast(list[str], fields)  # names only (the stubs type `fields` wider)


class LeaseEventInline(ReadOnlyInline):
    model = LeaseEvent
    fields = ["at", "kind", "from_status", "to_status", "actor_party", "actor", "reason", "data"]
    readonly_fields = cast(list[str], fields)  # names only (the stubs type `fields` wider)
    ordering = ["-at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class OperatorNoticeForm(forms.Form):
    requested_end_date = forms.DateField(
        required=False,
        help_text="Optional. The notice ends at the later of this date and the 90-day minimum.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(required=False, max_length=500)


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    # What an operator acts on first: whose, what state, how much, until when.
    list_display = [
        "number",
        "tenant",
        "status",
        "monthly_rate",
        "nodes",
        "term_end",
        "effective_end",
        "commencement",
    ]
    # Only the zones in use: the field's choices are every IANA zone.
    list_filter = ["status", "tenant", ("contract_timezone", admin.AllValuesFieldListFilter)]
    search_fields = ["number", "reference", "tenant__name", "tenant__slug"]
    list_select_related = ["tenant"]
    date_hierarchy = "commencement"
    inlines = [LeaseLineInline, NoticeInline, LeaseEventInline]
    readonly_fields = [
        "number",
        "reference",
        "tenant",
        "listing",
        "status",
        "currency",
        "contract_timezone",
        "commencement_date",
        "commencement",
        "term_days",
        "notice_days",
        "term_end",
        "effective_end",
        "latest_useful_notice",
        "drain_grace_hours",
        "released_at",
        "predecessor",
        "requested_by",
        "allocation_summary",
        "created_at",
        "updated_at",
    ]
    # The PO number is the one field an operator types in (through `lease_set_po_number`).
    fields = [*readonly_fields[:2], "po_number", *readonly_fields[2:]]
    actions = ["approve", "reject", "give_operator_notice", "confirm_release", "renew"]

    def save_model(self, request, obj, form, change):
        """Only the PO number is editable; it goes through the service, as the operator."""
        if change and "po_number" in form.changed_data:
            services.lease_set_po_number(
                lease=obj, po_number=form.cleaned_data["po_number"], actor=request.user
            )

    def has_add_permission(self, request):
        # Leases are created by requests (API) or operator deals (services), never by a raw form.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_nodes=Sum("lines__node_count"), rate=Sum("lines__monthly_rate"))
        )

    @admin.display(description="nodes", ordering="n_nodes")
    def nodes(self, obj):
        return obj.n_nodes

    @admin.display(description="monthly rate", ordering="rate")
    def monthly_rate(self, obj):
        return format_money(obj.rate, obj.currency) if obj.rate is not None else "—"

    @admin.display(description="latest useful notice date")
    def latest_useful_notice(self, obj):
        return rules.latest_useful_notice_date(obj.term_end, obj.notice_days, obj.contract_timezone)

    @admin.display(description="allocations by cluster")
    def allocation_summary(self, obj):
        rows = (
            Allocation.objects.filter(line__lease=obj)
            .values("line__cluster__slug", "starts_at", "ends_at")
            .annotate(n=Count("id"))
            .order_by("line__cluster__slug", "starts_at")
        )
        if not rows:
            return "No nodes allocated."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {} nodes, {} → {}</li>",
                (
                    (
                        r["line__cluster__slug"],
                        r["n"],
                        f"{r['starts_at']:%Y-%m-%d %H:%M}",
                        f"{r['ends_at']:%Y-%m-%d %H:%M}",
                    )
                    for r in rows
                ),
            ),
        )

    # --- actions ---

    approve = per_row_action(
        "Approve (allocate nodes)",
        "Approved",
        lambda obj, user: services.lease_approve(lease=obj, actor=user),
        permissions=["change"],
    )
    reject = per_row_action(
        "Reject request",
        "Rejected",
        lambda obj, user: services.lease_reject(
            lease=obj, actor=user, reason="Rejected by operator"
        ),
        permissions=["change"],
    )
    confirm_release = per_row_action(
        "Confirm nodes released",
        "Release confirmed",
        lambda obj, user: services.lease_release_confirm(lease=obj, actor=user),
        permissions=["change"],
    )
    renew = per_row_action(
        "Renew (successor on the same nodes)",
        "Renewed",
        lambda obj, user: services.lease_renew(lease=obj, actor=user),
        permissions=["change"],
    )

    def has_give_notice_permission(self, request) -> bool:
        """Changing leases and, since an operator notice takes capacity back from a tenant
        (what approving a reclaim decision gives), the approve permission too: otherwise this
        action would be a way around the approval. (The admin grants an action if *any* of
        its `allowed_permissions` holds, so both are checked here.)"""
        return request.user.has_perms(["leasing.change_lease", "reclaim.approve_reclaimdecision"])

    @admin.action(description="Give operator notice…", permissions=["give_notice"])
    def give_operator_notice(self, request, queryset):
        """Two steps: a confirmation page with each lease's dates (notice date, effective end,
        outcome, the renewal it cancels) and money effect (the lines taken back, the rent
        forgone, the credit notes that follow, who is told); then the notices. A lease whose
        notice would change nothing is left alone, and nothing is offered if none would."""
        now = timezone.now()
        form = OperatorNoticeForm(
            request.POST if "apply" in request.POST or "preview" in request.POST else None
        )
        requested_date = None
        if form.is_bound and form.is_valid():
            requested_date = form.cleaned_data["requested_end_date"]
        previews = []
        requests = []
        for lease in queryset.select_related("tenant").order_by("pk"):
            requested_end = (
                local_midnight(requested_date, lease.contract_timezone) if requested_date else None
            )
            notice_date = rules.notice_date_of(now, lease.contract_timezone)
            q = rules.quote(lease, notice_date, requested_end)
            # A notice that ends the lease early cancels its renewal (it commences later).
            renewal = (
                Lease.objects.filter(predecessor=lease)
                .exclude(status__in=(LeaseStatus.VOID, LeaseStatus.CANCELLED))
                .first()
                if q.outcome != NoticeOutcome.MOOT
                else None
            )
            previews.append((lease, q, requested_end, renewal))
            requests.append(notice_effects.NoticeRequest(lease.pk, notice_date, requested_end))
        effects = notice_effects.effects(requests)
        acting = {e.facts.lease_id for e in effects}
        if "apply" in request.POST and form.is_bound and form.is_valid():
            by_pk = {lease.pk: end for lease, _, end, _ in previews}
            unchanged = [lease.number for lease, *_ in previews if lease.pk not in acting]
            if unchanged:
                self.message_user(
                    request,
                    f"Left alone (a notice would change nothing): {', '.join(unchanged)}.",
                    messages.WARNING,
                )
            run_per_row(
                self,
                request,
                queryset.filter(pk__in=acting),
                "Operator notice given",
                lambda obj: notices.notice_give(
                    lease=obj,
                    party=Party.OPERATOR,
                    requested_end=by_pk[obj.pk],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    now=now,
                ),
            )
            return None
        currency = {lease.pk: lease.currency for lease, *_ in previews}
        totals: dict[str, dict[str, Decimal]] = {}
        for e in effects:
            row = totals.setdefault(currency[e.facts.lease_id], {"rent": ZERO, "credit": ZERO})
            row["rent"] += e.rent_forgone
            row["credit"] += e.credit
        return action_form_page(
            self,
            request,
            queryset,
            action="give_operator_notice",
            title="Give operator notice",
            template="admin/leasing/lease/operator_notice.html",
            form=form if form.is_bound else OperatorNoticeForm(),
            previews=previews,
            effects=[
                {
                    "e": e,
                    "rate": format_money(e.facts.monthly_rate, currency[e.facts.lease_id]),
                    "rent": format_money(e.rent_forgone, currency[e.facts.lease_id]),
                    "credit": format_money(e.credit, currency[e.facts.lease_id]),
                }
                for e in effects
            ],
            rent_forgone=" + ".join(format_money(t["rent"], c) for c, t in sorted(totals.items())),
            credits=" + ".join(format_money(t["credit"], c) for c, t in sorted(totals.items())),
            tenants=sorted({e.facts.tenant for e in effects}),
            unchanged=[lease.number for lease, *_ in previews if lease.pk not in acting],
            now=now,
        )

    # --- capacity view ---

    def get_urls(self):
        # Who holds which cluster: the admin only checks staff status for custom views.
        readers = operator_page("leasing.view_lease", "clusters.view_cluster")
        urls = [
            path(
                "capacity/",
                self.admin_site.admin_view(readers(self.capacity_view)),
                name="leasing_capacity",
            ),
            path(
                "capacity/<int:cluster_id>/",
                self.admin_site.admin_view(readers(self.capacity_cluster_view)),
                name="leasing_capacity_cluster",
            ),
        ]
        return urls + super().get_urls()

    def _as_of(self, request) -> dt.datetime:
        raw = request.GET.get("at")
        if raw:
            try:
                return local_midnight(dt.date.fromisoformat(raw), "UTC")
            except ValueError:
                messages.warning(request, f"Ignored an invalid date {raw!r}.")
        return timezone.now()

    def capacity_view(self, request: HttpRequest) -> HttpResponse:
        """Every cluster: nodes, healthy nodes, nodes held at the instant, free."""
        at = self._as_of(request)
        healthy = Q(nodes__status__in=ALLOCATABLE_STATUSES)
        # Held nodes counted among the healthy only, so `n_healthy - n_held` is the free count
        # (a down node that is still allocated is neither free nor part of `n_healthy`). Held
        # by the allocator's rule, holdover included.
        held_now = healthy & Q(nodes__in=held_node_ids(at=at, now=timezone.now()))
        clusters = (
            Cluster.objects.select_related("site", "accelerator")
            .annotate(
                n_nodes=Count("nodes", distinct=True),
                n_healthy=Count("nodes", filter=healthy, distinct=True),
                n_held=Count("nodes", filter=held_now, distinct=True),
            )
            .order_by("site__name", "name")
        )
        rows = [
            (
                c,
                reverse("admin:leasing_capacity_cluster", args=[c.pk]),
                max(c.n_healthy - c.n_held, 0),
            )
            for c in clusters
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Capacity by cluster",
            "opts": self.model._meta,
            "rows": rows,
            "at": at,
        }
        return TemplateResponse(request, "admin/leasing/capacity.html", context)

    def capacity_cluster_view(self, request: HttpRequest, cluster_id: int) -> HttpResponse:
        """Who holds the nodes of one cluster, until when: one row per lease and period."""
        cluster = get_object_or_404(Cluster.objects.select_related("site"), pk=cluster_id)
        at = self._as_of(request)
        now = timezone.now()
        holdings = (
            Allocation.objects.filter(node__cluster=cluster)
            .filter(held_during(at, None, now=now))
            .values(
                "line__lease_id",
                "line__lease__number",
                "line__lease__status",
                "line__lease__tenant__name",
            )
            .annotate(
                n=Count("id"),
                first_start=Min("starts_at"),
                last_end=Max("ends_at"),
            )
            .order_by("first_start", "line__lease__number")
        )
        page = Paginator(holdings, CAPACITY_PAGE_SIZE).get_page(request.GET.get("page"))
        n_nodes = Node.objects.filter(cluster=cluster).count()
        free_now = (
            Node.objects.filter(cluster=cluster, status__in=ALLOCATABLE_STATUSES)
            .exclude(pk__in=held_node_ids(at=at, now=now))
            .count()
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Capacity of {cluster}",
            "opts": self.model._meta,
            "cluster": cluster,
            "page": page,
            "n_nodes": n_nodes,
            "free_now": free_now,
            "at": at,
            "at_date": local_date(at, "UTC"),
            "lease_url": reverse("admin:leasing_lease_changelist"),
        }
        return TemplateResponse(request, "admin/leasing/capacity_cluster.html", context)


# --- notices and events -----------------------------------------------------------------------


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = [
        "notice",
        "tenant",
        "notice_date",
        "effective_end",
        "outcome",
        "status",
        "withdrawal_requested_by",
    ]
    list_filter = ["status", "outcome", "given_by"]
    search_fields = ["lease__number", "lease__tenant__name"]
    list_select_related = ["lease__tenant"]
    actions = ["request_withdrawal", "confirm_withdrawal"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["lines", "history"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="notice", ordering="lease__number")
    def notice(self, obj: Notice) -> str:
        """Who gave it on which lease: the row's link (tenant and dates have their columns)."""
        return f"{obj.get_given_by_display()}'s notice on {obj.lease.number}"

    @admin.display(description="tenant")
    def tenant(self, obj):
        return obj.lease.tenant

    @admin.display(description="history")
    def history(self, obj):
        """This notice's transitions from the lease's audit trail (the services tag each event
        about a notice with its id)."""
        if not obj.pk:
            return "—"
        events = LeaseEvent.objects.filter(lease_id=obj.lease_id, data__notice=obj.pk)
        return history_table(
            (e.at, e.kind, f"{e.actor_party}{f' ({e.actor})' if e.actor_id else ''} {e.reason}")
            for e in events.select_related("actor")
        )

    @admin.action(description="Request withdrawal (operator)", permissions=["change"])
    def request_withdrawal(self, request, queryset):
        run_per_row(
            self,
            request,
            queryset.filter(status=NoticeStatus.RECORDED),
            "Withdrawal requested",
            lambda obj: notices.notice_withdraw_request(
                notice=obj, party=Party.OPERATOR, actor=request.user
            ),
        )

    confirm_withdrawal = per_row_action(
        "Confirm the tenant's withdrawal request",
        "Withdrawal confirmed",
        lambda obj, user: notices.notice_withdraw_confirm(
            notice=obj, party=Party.OPERATOR, actor=user
        ),
        permissions=["change"],
    )


@admin.register(LeaseEvent)
class LeaseEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "lease", "kind", "from_status", "to_status", "actor_party", "actor"]
    list_filter = ["kind", "actor_party"]
    search_fields = ["lease__number", "kind"]
    list_select_related = ["lease", "actor"]
    date_hierarchy = "at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


# Admin registrations of subpackages (autodiscovery imports only `leasing.admin`).
from . import admin_maintenance  # noqa: E402, F401  (deferral requests)
from .api import admin as api_admin  # noqa: E402, F401

# --- acceptance records (docs/rules/fleet.md, "Delivery and acceptance") ------------------------
# Signed facts: read-only here. New records come from `import_acceptance` or the upload page
# (two steps: the verdicts per node, then confirm), both through `leasing.acceptance`.

ACCEPTANCE_UPLOAD_MAX_BYTES = 32 * 2**20

import json  # noqa: E402

from django.http import HttpResponseRedirect  # noqa: E402

from . import acceptance as acceptance_services  # noqa: E402
from .models import AcceptanceRecord  # noqa: E402


class AcceptanceUploadForm(forms.Form):
    FORMATS = [("auto", "Detect"), ("nccl", "nccl-tests all_reduce_perf"), ("json", "JSON")]

    results = forms.FileField(required=False, help_text="The tool output or the JSON document.")
    text = forms.CharField(required=False, widget=forms.HiddenInput)
    fmt = forms.ChoiceField(choices=FORMATS, initial="auto", label="Format")
    lease = forms.CharField(max_length=32, required=False, help_text="Lease number (nccl form).")
    line = forms.IntegerField(required=False, min_value=1, help_text="Line id, if several.")
    hostnames = forms.CharField(
        max_length=20_000,
        required=False,
        help_text="Comma-separated hosts of the run (default: the run's device list).",
    )
    signed_at = forms.DateTimeField(
        required=False, help_text="With an offset, e.g. 2026-11-05T09:00:00Z (default: now)."
    )
    batch = forms.CharField(max_length=64, required=False)
    step_time = forms.FloatField(required=False, min_value=0, label="Reference step time (s)")

    def clean_signed_at(self):
        value = self.cleaned_data.get("signed_at")
        raw = self.data.get("signed_at", "")
        if value is not None and not any(c in raw[10:] for c in "Z+-"):
            raise forms.ValidationError("Give the instant's offset (Z or ±hh:mm).")
        return value

    def results_text(self) -> str:
        upload = self.cleaned_data.get("results")
        if upload is not None:
            if upload.size > ACCEPTANCE_UPLOAD_MAX_BYTES:
                raise forms.ValidationError("The file is larger than 32 MiB.")
            try:
                return upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        return self.cleaned_data.get("text") or ""


@admin.register(AcceptanceRecord)
class AcceptanceRecordAdmin(ReadOnlyAdmin):
    # Records come through the upload page or the command, which judge against the model.
    list_display = [
        "signed_at",
        "hostname",
        "lease_number",
        "cluster",
        "batch",
        "passed",
        "source",
        "signed_by",
        "incident",
    ]
    list_filter = [
        "passed",
        ("batch", admin.AllValuesFieldListFilter),
        ("node__cluster", admin.RelatedOnlyFieldListFilter),
        "source",
    ]
    search_fields = ["node__hostname", "allocation__line__lease__number"]
    list_select_related = [
        "node__cluster__site",
        "allocation__line__lease",
        "signed_by",
        "incident",
    ]
    date_hierarchy = "signed_at"
    readonly_fields = [
        "allocation",
        "node",
        "batch",
        "tests_table",
        "passed",
        "source",
        "signed_by",
        "signed_at",
        "incident",
        "calibration",
        "raw",
        "created_at",
    ]
    fields = cast(list[Any], readonly_fields)
    change_list_template = "admin/leasing/acceptancerecord/change_list.html"

    @admin.display(description="hostname", ordering="node__hostname")
    def hostname(self, obj: AcceptanceRecord) -> str:
        return obj.node.hostname

    @admin.display(description="lease", ordering="allocation__line__lease__number")
    def lease_number(self, obj: AcceptanceRecord) -> str:
        return obj.allocation.line.lease.number

    @admin.display(description="cluster")
    def cluster(self, obj: AcceptanceRecord) -> str:
        return str(obj.node.cluster)

    @admin.display(description="tests")
    def tests_table(self, obj: AcceptanceRecord) -> str:
        return format_html(
            "<table><tr><th>test</th><th>measured</th><th>rule</th><th>threshold</th>"
            "<th>predicted</th><th>verdict</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        t.get("name"),
                        f"{t.get('measured', 0):.4g}",
                        t.get("unit", ""),
                        t.get("rule", ""),
                        f"{t.get('threshold', 0):.4g}",
                        f"{t['predicted']:.4g}" if "predicted" in t else "—",
                        "pass" if t.get("passed") else "FAIL",
                    )
                    for t in obj.tests
                ),
            ),
        )

    def get_urls(self):
        upload = operator_page(
            "leasing.view_acceptancerecord", write=["leasing.add_acceptancerecord"]
        )
        return [
            path(
                "upload/",
                self.admin_site.admin_view(upload(self.upload_view)),
                name="leasing_acceptancerecord_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Step 1: the results and where they belong → the verdict per node (nothing written).
        Step 2 (`confirm`): the same results recorded, signed by the operator, all or nothing."""
        form = AcceptanceUploadForm(request.POST or None, request.FILES or None)
        preview: list[acceptance_services.PreviewRow] = []
        text = ""
        if request.method == "POST" and form.is_valid():
            try:
                text = form.results_text()
                parsed = self._parse(form, text)
                if "confirm" in request.POST:
                    records = acceptance_services.acceptance_import(
                        items=parsed.items,
                        refused=parsed.errors,
                        signed_by=cast(Any, request.user),
                    )
                    passed = sum(r.passed for r in records)
                    self.message_user(
                        request,
                        f"{len(records)} acceptance records signed: {passed} passed, "
                        f"{len(records) - passed} failed.",
                        messages.SUCCESS,
                    )
                    for cal in {r.calibration for r in records if r.calibration is not None}:
                        self.message_user(
                            request,
                            f"Calibrated {cal.cluster}: bus bandwidth {cal.usable_gbps:,.1f} "
                            f"Gbit/s, step latency {cal.step_latency_us:,.2f} µs.",
                            messages.INFO,
                        )
                    return self._changelist_redirect()
                preview = acceptance_services.acceptance_preview(parsed=parsed)
            except forms.ValidationError as exc:
                form.add_error(None, exc)
            except (
                acceptance_services.InvalidAcceptance,
                acceptance_services.InvalidAcceptanceBatch,
            ) as exc:
                form.add_error(None, f"{exc.message} [{exc.code}]")
                for error in exc.extra.get("errors", []):
                    form.add_error(
                        None,
                        f"item {error['item']} ({error['hostname']}): "
                        f"[{error['code']}] {error['detail']}",
                    )
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload acceptance results",
            "opts": self.model._meta,
            "form": form,
            "preview": preview,
            "text": text,
            "refused": any(row.passed is None for row in preview),
        }
        return TemplateResponse(request, "operator/fleet/acceptance_upload.html", context)

    def _parse(self, form: AcceptanceUploadForm, text: str) -> acceptance_services.Parsed:
        data = form.cleaned_data
        if not text.strip():
            raise forms.ValidationError("Give a results file.")
        fmt = data["fmt"]
        if fmt == "auto":
            fmt = "json" if text.lstrip().startswith("{") else "nccl"
        if fmt == "json":
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(f"Not JSON: {exc}") from None
            return acceptance_services.items_from_json(
                document,
                lease=data["lease"] or None,
                signed_at=data["signed_at"],
                batch=data["batch"],
            )
        if not data["lease"]:
            raise forms.ValidationError("Give the lease number for nccl-tests output.")
        hosts = [h.strip() for h in (data["hostnames"] or "").split(",") if h.strip()]
        return acceptance_services.items_from_nccl(
            text,
            lease=data["lease"],
            line=data["line"],
            hostnames=hosts,
            signed_at=data["signed_at"] or timezone.now(),
            batch=data["batch"],
            step_time_s=data["step_time"],
        )

    def _changelist_redirect(self) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:leasing_acceptancerecord_changelist"))


# --- allocations and replacements (docs/rules/fleet.md, "Replacement") --------------------------

# How far back the instant shown on the confirmation page may lie when it is confirmed: a page
# left open longer is shown again with a fresh instant and fresh proposals.
REPLACE_CONFIRM_WITHIN = dt.timedelta(minutes=15)

from . import replacement as replacing  # noqa: E402
from .models import Replacement  # noqa: E402


class ReplaceForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, help_text="Recorded with the swap.")
    at = forms.DateTimeField(widget=forms.HiddenInput)


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    """Who holds node X: every allocation with its node, lease, tenant, line, period and
    acceptance. Read-only; the one write is "Replace from a spare" (`replacement.node_replace`)."""

    list_display = [
        "node",
        "lease_number",
        "tenant",
        "lease_line",
        "starts_at",
        "ends_at",
        "accepted_at",
    ]
    list_filter = [
        ("accepted_at", admin.EmptyFieldListFilter),
        "line__lease__status",
        "node__cluster",
    ]
    search_fields = ["node__hostname", "line__lease__number", "line__lease__tenant__name"]
    list_select_related = ["node", "line__lease__tenant", "line__cluster"]
    date_hierarchy = "starts_at"
    actions = ["replace_from_spare"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_replacement_permission(self, request) -> bool:
        return request.user.has_perm("leasing.add_replacement")

    @admin.display(description="lease", ordering="line__lease__number")
    def lease_number(self, obj):
        return obj.line.lease.number

    @admin.display(description="tenant", ordering="line__lease__tenant__name")
    def tenant(self, obj):
        return obj.line.lease.tenant

    @admin.display(description="line")
    def lease_line(self, obj: Allocation) -> str:
        """The lease line by its cluster and size (lease and tenant have their columns), linked."""
        line = obj.line
        url = reverse("admin:leasing_leaseline_change", args=[line.pk])
        return format_html(
            '<a href="{}">{} · {} nodes</a>', url, line.cluster.slug, f"{line.node_count:,}"
        )

    @admin.action(description="Replace from a spare…", permissions=["add_replacement"])
    def replace_from_spare(self, request, queryset):
        """Two steps: a page with each failed node, the spare proposed by its line's policy (or
        why there is none), the lease, the tenant and the swap instant; then the swaps, each
        its own transaction, at that instant, with the spares shown (re-checked under the
        locks: one taken meanwhile is refused, not silently changed)."""
        now = timezone.now().replace(microsecond=0)  # the hidden field keeps whole seconds
        rows = list(
            queryset.select_related(
                "node__cluster", "line__cluster", "line__lease__tenant"
            ).order_by("pk")
        )
        form = ReplaceForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            at = form.cleaned_data["at"]
            if now - REPLACE_CONFIRM_WITHIN <= at <= now:
                spares = {
                    n.pk: n
                    for n in Node.objects.filter(
                        pk__in=[
                            request.POST.get(f"spare_{a.pk}")
                            for a in rows
                            if (request.POST.get(f"spare_{a.pk}") or "").isdigit()
                        ]
                    )
                }

                def swap(allocation):
                    chosen = request.POST.get(f"spare_{allocation.pk}") or ""
                    return replacing.node_replace(
                        allocation=allocation,
                        spare=spares.get(int(chosen)) if chosen.isdigit() else None,
                        now=at,
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                    )

                run_per_row(self, request, queryset, "Replaced from a spare", swap)
                return None
            messages.warning(request, "The instant shown had expired: here it is again.")
        proposals, proposed = [], set()
        for a in rows:  # one spare per row: a later row is not offered an earlier row's spare
            proposal = replacing.replacement_propose(allocation=a, now=now, exclude=proposed)
            if proposal.spare is not None:
                proposed.add(proposal.spare.pk)
            proposals.append(proposal)
        return action_form_page(
            self,
            request,
            queryset,
            action="replace_from_spare",
            title="Replace from a spare",
            template="admin/leasing/allocation/replace.html",
            form=ReplaceForm(initial={"at": now}),
            proposals=proposals,
            now=now,
        )


LINE_HISTORY_LIMIT = 100  # rows of each kind on a line's page; the full lists are linked


@admin.register(LeaseLine)
class LeaseLineAdmin(ReadOnlyAdmin):
    """A lease line and what happened to it: its nodes now, then allocations, hand-over and
    acceptance, releases, replacements and notices in time order. Read-only: lines change
    through the lease's services (approval, notices, replacement, cancellation)."""

    list_display = [
        "__str__",
        "lease_number",
        "tenant",
        "cluster",
        "node_count",
        "rate",
        "status",
        "effective_end",
    ]
    list_filter = ["status", "cluster__site", "cluster"]
    search_fields = ["lease__number", "lease__tenant__name", "cluster__name"]
    list_select_related = ["lease__tenant", "cluster__site"]
    ordering = ["-lease__commencement", "lease_id", "pk"]
    fields = [
        "lease",
        "cluster",
        "node_count",
        "rate",
        "status",
        "effective_end",
        "substitution_policy",
        "nodes_now",
        "history",
    ]
    readonly_fields = cast(list[str], fields)  # names only (the stubs type `fields` wider)
    rate = money_display("monthly_rate", "monthly rate", currency=attrgetter("lease.currency"))

    @admin.display(description="lease", ordering="lease__number")
    def lease_number(self, obj: LeaseLine) -> str:
        return obj.lease.number

    @admin.display(description="tenant", ordering="lease__tenant__name")
    def tenant(self, obj: LeaseLine) -> str:
        return obj.lease.tenant.name

    @admin.display(description="nodes now")
    def nodes_now(self, obj: LeaseLine) -> str:
        """Held now, of which accepted, with the way to every allocation of the line."""
        now = timezone.now()
        held = Allocation.objects.filter(line=obj).filter(held_at(now, now=now))
        counts = held.aggregate(
            held=Count("pk"), accepted=Count("pk", filter=Q(accepted_at__lte=now))
        )
        url = reverse("admin:leasing_allocation_changelist") + f"?line={obj.pk}"
        return format_html(
            '{} held, {} accepted · <a href="{}">every allocation of the line</a>',
            counts["held"],
            counts["accepted"],
            url,
        )

    @admin.display(description="history")
    def history(self, obj: LeaseLine) -> str:
        """Allocations, acceptances and releases grouped by their instant, replacements and
        notices, in time order: a bounded number of rows of each kind."""
        if not obj.pk:
            return "—"
        now = timezone.now()
        allocations = Allocation.objects.filter(line=obj).order_by()
        cap = LINE_HISTORY_LIMIT

        def grouped(field: str, queryset=allocations):
            return (
                queryset.exclude(**{f"{field}__isnull": True})
                .values_list(field)
                .annotate(n=Count("pk"))
                .order_by(field)[:cap]
            )

        rows: list[tuple] = [(at, "allocated", f"{n} node(s)") for at, n in grouped("starts_at")]
        rows += [(at, "accepted", f"{n} node(s)") for at, n in grouped("accepted_at")]
        rows += [
            (at, "released", f"{n} node(s)")
            for at, n in grouped("ends_at", allocations.filter(ends_at__lte=now))
        ]
        rows += [
            (
                r.at,
                "replaced",
                f"{r.failed_allocation.node.hostname} → {r.spare_allocation.node.hostname}"
                + (f" ({r.reason})" if r.reason else ""),
            )
            for r in obj.replacements.select_related(
                "failed_allocation__node", "spare_allocation__node"
            ).order_by("at")[:cap]
        ]
        # A notice naming no line ends the whole lease, this line with it.
        notices = Notice.objects.filter(Q(lines=obj) | Q(lines__isnull=True), lease_id=obj.lease_id)
        rows += [
            (
                n.received_at,
                f"notice ({n.get_status_display()})",
                f"by the {n.get_given_by_display().lower()}, "
                f"effective {n.effective_end:%Y-%m-%d %H:%M} UTC",
            )
            for n in notices.distinct().order_by("received_at")[:cap]
        ]
        return history_table(rows)


@admin.register(Replacement)
class ReplacementAdmin(ReadOnlyAdmin):
    """Every swap: when, which lease, the failed node and its spare, the incident, who did it."""

    list_display = [
        "at",
        "lease_number",
        "tenant",
        "failed_node",
        "spare_node",
        "spare_accepted_at",
        "incident",
        "actor",
        "reason",
    ]
    list_filter = ["line__substitution_policy", "line__lease__tenant"]
    search_fields = [
        "failed_allocation__node__hostname",
        "spare_allocation__node__hostname",
        "line__lease__number",
    ]
    list_select_related = [
        "line__lease__tenant",
        "failed_allocation__node",
        "spare_allocation__node",
        "incident",
        "actor",
    ]
    date_hierarchy = "at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.display(description="lease", ordering="line__lease__number")
    def lease_number(self, obj):
        return obj.line.lease.number

    @admin.display(description="tenant")
    def tenant(self, obj):
        return obj.line.lease.tenant

    @admin.display(description="failed node")
    def failed_node(self, obj):
        return obj.failed_allocation.node

    @admin.display(description="spare")
    def spare_node(self, obj):
        return obj.spare_allocation.node

    @admin.display(description="spare accepted")
    def spare_accepted_at(self, obj):
        return obj.spare_allocation.accepted_at or "pending"
