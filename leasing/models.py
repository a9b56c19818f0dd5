"""Leasing: who holds what, until when.

Rules live in `leasing/services.py`; these models state the invariants that must hold whatever
code writes them, as database constraints. All instants are UTC; a lease's dates are read in its
`contract_timezone`, and its boundaries are local midnights there. Intervals are half-open.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from clusters.models import Cluster, ClusterCalibration, Incident, MaintenanceWindow, Node
from common.contract_time import timezone_choices
from common.display import day, instant
from common.fields import actor_field, money_field
from common.models import StoredKey
from common.money import DEFAULT_CURRENCY

from .choices import (
    DeferralStatus,
    LeaseStatus,
    LineStatus,
    ListingEventKind,
    ListingStatus,
    ListingVisibility,
    MembershipRole,
    NoticeOutcome,
    NoticeStatus,
    Party,
    SubstitutionPolicy,
    TenantStanding,
)

DEFAULT_TERM_DAYS = 180
DEFAULT_NOTICE_DAYS = 90


class Tenant(models.Model):
    """An AI lab that leases capacity. `standing` is payment standing, not a lease state."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    billing_email = models.EmailField(blank=True, default="")
    standing = models.CharField(
        max_length=16, choices=TenantStanding.choices, default=TenantStanding.CURRENT
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TenantMembership", related_name="tenants"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantMembership(models.Model):
    """A Django user acting for a tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships"
    )
    role = models.CharField(
        max_length=16, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant}"


class Listing(models.Model):
    """Capacity offered on the marketplace: up to `node_count` nodes of one cluster.

    Price is per node per month; a private listing is visible to `private_tenant` only.
    """

    title = models.CharField(max_length=200)
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="listings")
    node_count = models.PositiveIntegerField()
    earliest_start = models.DateField(help_text="First commencement date a request may ask for.")
    monthly_rate_per_node = money_field(help_text="USD per node per calendar month.")
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    term_days = models.PositiveIntegerField(default=DEFAULT_TERM_DAYS)
    notice_days = models.PositiveIntegerField(default=DEFAULT_NOTICE_DAYS)
    contract_timezone = models.CharField(max_length=64, default="UTC", choices=timezone_choices)
    status = models.CharField(
        max_length=16, choices=ListingStatus.choices, default=ListingStatus.DRAFT, db_index=True
    )
    visibility = models.CharField(
        max_length=16, choices=ListingVisibility.choices, default=ListingVisibility.PUBLIC
    )
    private_tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="private_listings"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["earliest_start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(node_count__gt=0), name="listing_nodes_positive"),
            models.CheckConstraint(
                condition=Q(monthly_rate_per_node__gte=0), name="listing_rate_nonneg"
            ),
            models.CheckConstraint(condition=Q(term_days__gt=0), name="listing_term_positive"),
            models.CheckConstraint(
                condition=(
                    Q(visibility=ListingVisibility.PRIVATE) & Q(private_tenant__isnull=False)
                )
                | (Q(visibility=ListingVisibility.PUBLIC) & Q(private_tenant__isnull=True)),
                name="listing_private_has_tenant",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ListingEvent(models.Model):
    """Audit trail of a listing: who published or withdrew it, when, from which status.

    Only the operator moves a listing, so unlike `LeaseEvent` there is no party; `actor` is the
    staff user (None when the system acted, e.g. a seed or a command without a user).
    """

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=ListingEventKind.choices)
    from_status = models.CharField(max_length=16, choices=ListingStatus.choices)
    to_status = models.CharField(max_length=16, choices=ListingStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["listing", "at"], name="listingevent_listing_at")]

    def __str__(self) -> str:
        return f"{self.listing}: {self.get_kind_display().lower()} {instant(self.at)}"


class Lease(models.Model):
    """A fixed-term lease of nodes to one tenant.

    `commencement` and `term_end` are local midnights in `contract_timezone`
    (`term_end = local_midnight(commencement_date + term_days)`). `effective_end` is the binding
    early end set by the earliest valid notice (null while none); the lease holds capacity over
    `[commencement, effective_end or term_end)`. An ended lease is never mutated: a renewal is a
    new lease whose `predecessor` is this one.
    """

    number = models.CharField(max_length=20, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="leases")
    listing = models.ForeignKey(
        Listing, null=True, blank=True, on_delete=models.PROTECT, related_name="leases"
    )
    status = models.CharField(
        max_length=16, choices=LeaseStatus.choices, default=LeaseStatus.DRAFT, db_index=True
    )
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    contract_timezone = models.CharField(max_length=64, default="UTC", choices=timezone_choices)
    commencement_date = models.DateField()
    commencement = models.DateTimeField(help_text="Local midnight of the commencement date (UTC).")
    term_days = models.PositiveIntegerField(default=DEFAULT_TERM_DAYS)
    notice_days = models.PositiveIntegerField(default=DEFAULT_NOTICE_DAYS)
    term_end = models.DateTimeField()
    effective_end = models.DateTimeField(null=True, blank=True)
    drain_grace_hours = models.PositiveIntegerField(default=24)
    released_at = models.DateTimeField(
        null=True, blank=True, help_text="When the operator confirmed the nodes were released."
    )
    reference = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The operator's deal reference; unique when set (also keys the demo data).",
    )
    po_number = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="The tenant's purchase order number, shown on every invoice and credit note.",
    )
    predecessor = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="successor"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-commencement", "number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(term_end__gt=F("commencement")), name="lease_term_end_after_start"
            ),
            models.CheckConstraint(condition=Q(term_days__gt=0), name="lease_term_positive"),
            models.CheckConstraint(
                condition=Q(effective_end__isnull=True) | Q(effective_end__lte=F("term_end")),
                name="lease_effective_end_within_term",
            ),
            models.UniqueConstraint(
                fields=["reference"],
                condition=~Q(reference=""),
                name="lease_reference_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status"], name="lease_tenant_status"),
            # The tenant API's pages: newest first within one tenant, cut after a page.
            models.Index(fields=["tenant", "id"], name="lease_tenant_id"),
            models.Index(fields=["status", "term_end"], name="lease_status_term_end"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def end(self):  # -> datetime
        """The instant the lease stops holding capacity: effective end if set, else term end."""
        return self.end_of(self.effective_end, self.term_end)

    @staticmethod
    def end_of(effective_end, term_end):  # -> datetime
        """`end` from the two columns (for rows read without a model instance)."""
        return effective_end or term_end


class LeaseNumberSeries(models.Model):
    """The last lease number issued per calendar year (`L-2026-0001`, `L-2026-0002`, ...).

    The service inserts the year's row if missing and then locks it (`select_for_update`), so
    concurrent requests take numbers one after another and never collide. The database refuses
    any other edit (billing migration 0005): a new year starts at 0, `last_value` never goes
    down, a row is never deleted.
    """

    year = models.PositiveSmallIntegerField(unique=True)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "lease number series"

    def __str__(self) -> str:
        return f"L-{self.year}: {self.last_value}"


def line_label(lease_number: str, tenant: str, cluster_slug: str, node_count: int) -> str:
    """A lease line as people name it, where a list or a sentence names several: lines have no
    number of their own, so lease, tenant, cluster and size (`L-0003 · Northwind AI · c1 · 512
    nodes`)."""
    return f"{lease_number} · {tenant} · {cluster_slug} · {node_count:,} nodes"


class LeaseLine(models.Model):
    """Nodes of one cluster within a lease, at a monthly rate. A lease's rate is its lines' sum.

    `effective_end` is set when a notice ends this line before the lease's end (partial
    notice or reclaim); null means the line runs as long as the lease.
    """

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="lines")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="lease_lines")
    node_count = models.PositiveIntegerField()
    monthly_rate = money_field(help_text="USD per calendar month for the whole line.")
    status = models.CharField(max_length=16, choices=LineStatus.choices, default=LineStatus.OPEN)
    effective_end = models.DateTimeField(null=True, blank=True)
    substitution_policy = models.CharField(
        max_length=16,
        choices=SubstitutionPolicy.choices,
        default=SubstitutionPolicy.SAME_CLUSTER,
        help_text="Which spares may replace a failed node (wider only where the lease says so).",
    )

    class Meta:
        ordering = ["lease", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(node_count__gt=0), name="line_nodes_positive"),
            models.CheckConstraint(condition=Q(monthly_rate__gte=0), name="line_rate_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.lease}: {self.node_count} nodes of {self.cluster}"

    @property
    def label(self) -> str:
        """The line as people name it (reads `lease__tenant` and `cluster`: select them)."""
        return line_label(
            self.lease.number, self.lease.tenant.name, self.cluster.slug, self.node_count
        )

    @property
    def end(self):  # -> datetime
        """When this line stops: its own effective end, the lease's, or the term end, earliest."""
        return min(d for d in (self.effective_end, self.lease.end) if d is not None)


class Allocation(models.Model):
    """A concrete node held by a lease line over `[starts_at, ends_at)`.

    No overcommit: a node has at most one allocation at any instant. On PostgreSQL an exclusion
    constraint (`node WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&`, btree_gist, added in
    migration 0002) rejects an overlap whatever code writes it; the allocation service checks
    the same under row locks so SQLite behaves too.
    """

    line = models.ForeignKey(LeaseLine, on_delete=models.CASCADE, related_name="allocations")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="allocations")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    accepted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the node passed acceptance for this line (its latest passing record).",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="allocation_end_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["node", "starts_at", "ends_at"], name="allocation_node_period"),
        ]

    def __str__(self) -> str:
        period = f"{instant(self.starts_at)} to {instant(self.ends_at)}"
        return f"{self.node} for {self.line.lease}, {period}"


class Notice(models.Model):
    """A notice of early end from either party, for the whole lease or for some of its lines.

    `notice_date` is the local date of receipt; `effective_end` is computed by the rules at
    receipt and stored. An empty `lines` set means the whole lease.
    """

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="notices")
    given_by = models.CharField(max_length=16, choices=Party.choices)
    given_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lines = models.ManyToManyField(LeaseLine, blank=True, related_name="notices")
    received_at = models.DateTimeField()
    notice_date = models.DateField()
    requested_end = models.DateTimeField(null=True, blank=True)
    effective_end = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=NoticeOutcome.choices)
    status = models.CharField(
        max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.RECORDED, db_index=True
    )
    reason = models.CharField(max_length=500, blank=True, default="")
    withdrawal_requested_by = models.CharField(
        max_length=16, choices=Party.choices, blank=True, default=""
    )
    withdrawal_requested_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        """Lease, tenant and dates (reads `lease__tenant`: select it where notices are listed)."""
        party = self.get_given_by_display()
        lease = self.lease
        return (
            f"{party}'s notice on {lease.number} · {lease.tenant.name}, received "
            f"{day(self.notice_date)}, effective {instant(self.effective_end)}"
        )


class LeaseEvent(models.Model):
    """Audit trail: every transition of a lease or notice (who, when, from, to, why)."""

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=48)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    actor_party = models.CharField(max_length=16, choices=Party.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lease", "at"], name="leaseevent_lease_at")]

    def __str__(self) -> str:
        return f"{self.lease}: {self.kind} {instant(self.at)}"


# --- The fleet under a lease (docs/rules/fleet.md) ------------------------------------------


class AcceptanceRecord(models.Model):
    """How one allocated node was checked before hand-over, and the verdict.

    `tests` lists each test as `{"name", "measured", "threshold", "unit", "rule", "passed"}`
    (`rule` is `">="` or `"<="`); the thresholds derive from the performance model's prediction
    for the node's cluster. A node may be tested more than once; its latest record decides, and
    a passing one sets `Allocation.accepted_at`. `batch` names the phase of a phased hand-over
    (a rack, a row). A failed record opens an incident.
    """

    allocation = models.ForeignKey(
        Allocation, on_delete=models.PROTECT, related_name="acceptance_records"
    )
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="acceptance_records")
    batch = models.CharField(max_length=64, blank=True, default="")
    tests = models.JSONField(default=list)
    passed = models.BooleanField()
    source = models.CharField(
        max_length=32, help_text="Where the results came from: nccl-tests, json, manual."
    )
    raw = models.TextField(blank=True, default="", help_text="The tool output, as imported.")
    signed_by = actor_field()
    signed_at = models.DateTimeField()
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="acceptance_records",
        help_text="The incident a failed acceptance opened.",
    )
    calibration = models.ForeignKey(
        ClusterCalibration,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The cluster calibration fitted from the same nccl-tests run.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [
            models.Index(fields=["allocation", "signed_at"], name="acceptance_alloc_at"),
            models.Index(fields=["node", "signed_at"], name="acceptance_node_at"),
        ]

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return f"Acceptance of {self.node} {verdict} {instant(self.signed_at)}"


class Replacement(models.Model):
    """A failed node swapped for a spare on a line, at one instant.

    The failed node's allocation ends at `at` and the spare's begins at `at`, under the same
    no-overcommit guarantee and lock order as any allocation (docs/architecture.md).
    """

    line = models.ForeignKey(LeaseLine, on_delete=models.PROTECT, related_name="replacements")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.PROTECT, related_name="replacements"
    )
    failed_allocation = models.OneToOneField(
        Allocation, on_delete=models.PROTECT, related_name="replaced_by"
    )
    spare_allocation = models.OneToOneField(
        Allocation, on_delete=models.PROTECT, related_name="replacement_for"
    )
    at = models.DateTimeField()
    actor = actor_field()
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"Replacement on {self.line} {instant(self.at)}"


class MaintenanceDeferral(models.Model):
    """A tenant's request to postpone a maintenance window touching its nodes, and the answer.

    One open request per window and tenant; granting moves the window (a `maintenance.changed`).
    """

    window = models.ForeignKey(
        MaintenanceWindow, on_delete=models.CASCADE, related_name="deferrals"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="deferrals")
    requested_at = models.DateTimeField()
    requested_start = models.DateTimeField(help_text="The start the tenant asks for.")
    reason = models.CharField(max_length=1000, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=DeferralStatus.choices, default=DeferralStatus.REQUESTED
    )
    decided_by = actor_field()
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["window", "tenant"],
                condition=Q(status=DeferralStatus.REQUESTED),
                name="deferral_one_open_per_tenant",
            ),
            models.CheckConstraint(
                condition=(Q(status=DeferralStatus.REQUESTED) & Q(decided_at__isnull=True))
                | (~Q(status=DeferralStatus.REQUESTED) & Q(decided_at__isnull=False)),
                name="deferral_decided_iff_decided_at",
            ),
        ]

    def __str__(self) -> str:
        return f"Deferral of {self.window} asked by {self.tenant}"


# --- Tenant API: keys, idempotency, webhooks -------------------------------------------------


class ApiKey(StoredKey):
    """A tenant's API key (`common.models.StoredKey`: shown once, stored hashed; keys are long
    random strings, so a fast hash is enough)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")

    def __str__(self) -> str:
        return f"{self.tenant} key {self.prefix}…"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an `Idempotency-Key`, replayed for the same key
    and body (a different body with the same key is refused). Kept at least 24 hours.

    A key belongs to the tenant that sent it (tenant API) or to the staff user whose operator
    key sent it (operator API), never both."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_key"),
            models.UniqueConstraint(
                fields=["operator", "key"], name="idempotency_unique_operator_key"
            ),
            models.CheckConstraint(
                condition=Q(tenant__isnull=False, operator__isnull=True)
                | Q(tenant__isnull=True, operator__isnull=False),
                name="idempotency_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant or self.operator}: {self.method} {self.path} ({self.key})"
