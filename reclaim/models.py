"""Reclaim decisions: should the operator take leased capacity back for its own training?

Rules live in `reclaim/services.py` (writes) and `reclaim/planner.py` (pure valuation).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from common.fields import money_field
from leasing.models import LeaseLine, Notice

from .choices import ReclaimStatus, Recommendation


class ReclaimDecision(models.Model):
    """Should the operator take back this leased capacity for its own training?

    The candidate is a set of lease lines (a whole lease, some lines, everything on a cluster or
    campus). Scoring values the capacity over `[window_start, window_end)` — from the effective
    end a notice given on `notice_date` would have, to the term end — against the rent forgone
    over the same window. `inputs` (the scenario document), `model_version` and `assessment`
    are stored so any past decision can be re-read and re-run exactly.
    States: DRAFT → SCORED → APPROVED → NOTICE_ISSUED → EXECUTED, or REJECTED.
    """

    title = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=ReclaimStatus.choices, default=ReclaimStatus.DRAFT, db_index=True
    )
    scope_kind = models.CharField(
        max_length=16, help_text="lease, lines, cluster, site or plan: how the set was chosen."
    )
    lines = models.ManyToManyField(LeaseLine, related_name="reclaim_decisions")
    notice_date = models.DateField(help_text="Date the operator notice would be given.")
    workload = models.JSONField(default=dict, blank=True, help_text="Workload field overrides.")
    economics = models.JSONField(default=dict, blank=True, help_text="Economics overrides.")
    inputs = models.JSONField(null=True, blank=True, help_text="Scenario document scored.")
    model_version = models.CharField(max_length=20, blank=True, default="")
    assessment = models.JSONField(null=True, blank=True)
    uncertainty = models.JSONField(
        null=True,
        blank=True,
        help_text="The decision over sampled unknowns: P(reclaim beats renting), net "
        "percentiles and the tornado (landlord.uncertainty/2; decisions stored before "
        "hold /1, whose ranges set values instead of moving the scored ones).",
    )
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    internal_value = money_field(null=True, blank=True, help_text="USD over the window.")
    rent_forgone = money_field(null=True, blank=True, help_text="USD over the window.")
    net_value = money_field(null=True, blank=True, help_text="internal value − rent forgone.")
    recommendation = models.CharField(
        max_length=16, choices=Recommendation.choices, blank=True, default=""
    )
    previous_recommendation = models.CharField(
        max_length=16, choices=Recommendation.choices, blank=True, default=""
    )
    flipped_at = models.DateTimeField(
        null=True, blank=True, help_text="Last re-score that changed the recommendation."
    )
    notices = models.ManyToManyField(Notice, blank=True, related_name="reclaim_decisions")
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # Approving gives operator notices on tenants' leases: its own permission, apart from
        # scoring (change), so planners can score what only some operators may approve.
        permissions = [
            ("approve_reclaimdecision", "Can approve a reclaim decision and give its notices"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_start__isnull=True)
                | Q(window_end__isnull=True)
                | Q(window_end__gte=F("window_start")),
                name="reclaim_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(rent_forgone__isnull=True) | Q(rent_forgone__gte=0),
                name="reclaim_rent_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return self.title
