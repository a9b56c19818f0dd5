"""ReclaimDecision in the admin: read-only rows, approve / reject / re-score via the services.

Actions report per row (success, or the refusal with its code). A "flipped" filter lists the
decisions whose recommendation changed on a re-score. Registered when `leasing.admin` imports
this module.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from common.admin import history_table, money_display, per_row_action

from . import services
from .choices import ReclaimStatus
from .models import ReclaimDecision


class FlippedFilter(admin.SimpleListFilter):
    title = "recommendation flipped"
    parameter_name = "flipped"

    def lookups(self, request, model_admin):
        return [("yes", "Flipped"), ("no", "Not flipped")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(flipped_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(flipped_at__isnull=True)
        return queryset


MONEY = {"internal_value": "value", "rent_forgone": "rent", "net_value": "net"}


@admin.register(ReclaimDecision)
class ReclaimDecisionAdmin(admin.ModelAdmin):
    # The recommendation and its money first, then the dates.
    list_display = [
        "title",
        "recommendation",
        "status",
        "net",
        "value",
        "rent",
        "notice_date",
        "flipped",
        "workbench",
    ]
    list_filter = ["status", "recommendation", FlippedFilter]
    search_fields = ["title"]
    date_hierarchy = "created_at"
    actions = ["approve", "reject", "rescore"]
    # Money fields are shown as money (`value`, `rent`, `net`, below) in their place.
    readonly_fields = [
        MONEY.get(f.name, f.name) for f in ReclaimDecision._meta.fields if f.name != "id"
    ] + ["lines", "notices", "history"]

    def has_add_permission(self, request):
        return False  # created through the workbench or the services

    @admin.display(description="history")
    def history(self, obj):
        """The decision's life from its stamped transitions and the notices it issued."""
        if not obj.pk:
            return "—"
        decided = {
            ReclaimStatus.REJECTED: "rejected",
            ReclaimStatus.NOTICE_ISSUED: "approved, notices issued",
            ReclaimStatus.EXECUTED: "approved, notices issued",
        }.get(obj.status, "decided")
        return history_table(
            [
                (obj.created_at, "created", str(obj.created_by or "")),
                (obj.scored_at, "last scored", obj.get_recommendation_display()),
                (
                    obj.flipped_at,
                    "recommendation flipped",
                    f"{obj.get_previous_recommendation_display()} → "
                    f"{obj.get_recommendation_display()}",
                ),
                (obj.decided_at, decided, str(obj.decided_by or "")),
                *(
                    (
                        n.received_at,
                        "notice given",
                        f"{n.lease.number}, ends {n.effective_end:%Y-%m-%d}",
                    )
                    for n in obj.notices.select_related("lease")
                ),
                (obj.executed_at, "executed", "nodes released"),
            ]
        )

    def has_change_permission(self, request, obj=None):
        return False  # the fields are read-only: a decision moves only through the actions

    def has_score_permission(self, request) -> bool:
        """Re-score or reject: the model's change permission (the form stays read-only)."""
        return request.user.has_perm("reclaim.change_reclaimdecision")

    def has_approve_permission(self, request) -> bool:
        """Approving gives operator notices on tenants' leases: its own permission."""
        return request.user.has_perm("reclaim.approve_reclaimdecision")

    value = money_display("internal_value", "internal value", currency=None)
    rent = money_display("rent_forgone", "rent forgone", currency=None)
    net = money_display("net_value", "net", currency=None)

    @admin.display(description="flipped", ordering="flipped_at")
    def flipped(self, obj):
        if obj.flipped_at is None:
            return ""
        return f"was {obj.get_previous_recommendation_display()} ({obj.flipped_at:%Y-%m-%d})"

    @admin.display(description="")
    def workbench(self, obj):
        return format_html(
            '<a href="{}">open</a>', reverse("operator:reclaim:detail", args=[obj.pk])
        )

    approve = per_row_action(
        "Approve and give the notices",
        "Approved",
        lambda d, user: services.decision_approve(decision=d, actor=user),
        permissions=["approve"],
    )
    reject = per_row_action(
        "Reject",
        "Rejected",
        lambda d, user: services.decision_reject(decision=d, actor=user),
        permissions=["score"],
    )
    rescore = per_row_action(
        "Re-score now",
        "Re-scored",
        lambda d, _user: services.decision_score(decision=d),
        permissions=["score"],
    )
