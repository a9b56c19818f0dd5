"""Inventory: what the operator owns and where it is.

Physical quantities are floats with their unit in the field name; money (market prices) is
Decimal. Every rule that must never be false is a database constraint, so no code path (admin,
shell, bulk insert) can write an impossible row.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from common.contract_time import timezone_choices
from common.fields import actor_field

from .choices import (
    CalibrationSource,
    Generation,
    IncidentCategory,
    IncidentSource,
    IncidentStatus,
    MaintenanceCategory,
    MaintenanceKind,
    MaintenanceScope,
    MaintenanceStatus,
    NodeStatus,
    Severity,
)
from .perfmodel import terms


class AcceleratorModel(models.Model):
    """A GPU model of the catalog; figures are per GPU, dense BF16 (FP16 for Volta)."""

    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=32, unique=True)
    generation = models.CharField(max_length=16, choices=Generation.choices)
    peak_tflops = models.FloatField(help_text="Peak dense BF16 TFLOP/s per GPU (FP16 on Volta).")
    hbm_gb = models.FloatField(help_text="HBM capacity per GPU, GB.")
    hbm_tbps = models.FloatField(help_text="HBM bandwidth per GPU, TB/s.")
    scaleup_gbytes_per_s = models.FloatField(help_text="Scale-up (NVLink) bandwidth, GB/s.")
    scaleout_gbps = models.FloatField(help_text="Scale-out network per GPU, Gbit/s.")
    tdp_w = models.PositiveIntegerField(help_text="Thermal design power per GPU, W.")
    reference_mfu = models.FloatField(
        help_text="Model FLOPs utilisation reached in large dense training (0–1)."
    )
    jitter_cv = models.FloatField(
        help_text="Coefficient of variation of per-step time of one GPU (e.g. 0.02 = 2 %)."
    )
    mtbf_hours = models.FloatField(
        help_text="Mean time between job-interrupting failures, per GPU, hours."
    )
    market_price_per_gpu_hour = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        help_text="Market rent, USD per GPU-hour (2025–26).",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(peak_tflops__gt=0)
                & Q(hbm_gb__gt=0)
                & Q(hbm_tbps__gt=0)
                & Q(scaleup_gbytes_per_s__gt=0)
                & Q(scaleout_gbps__gt=0)
                & Q(tdp_w__gt=0)
                & Q(mtbf_hours__gt=0),
                name="accelerator_figures_positive",
            ),
            models.CheckConstraint(
                condition=Q(reference_mfu__gt=0) & Q(reference_mfu__lte=1),
                name="accelerator_mfu_in_0_1",
            ),
            models.CheckConstraint(condition=Q(jitter_cv__gte=0), name="accelerator_jitter_nonneg"),
            models.CheckConstraint(
                condition=Q(market_price_per_gpu_hour__gte=0), name="accelerator_price_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A campus: a place with power, holding clusters."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    latitude = models.FloatField(help_text="Degrees, −90 to 90.")
    longitude = models.FloatField(help_text="Degrees, −180 to 180.")
    timezone = models.CharField(max_length=64, default="UTC", choices=timezone_choices)
    power_mw = models.FloatField(help_text="Contracted power, MW.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__gte=-90) & Q(latitude__lte=90),
                name="site_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__gte=-180) & Q(longitude__lte=180),
                name="site_longitude_range",
            ),
            models.CheckConstraint(condition=Q(power_mw__gt=0), name="site_power_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class SiteLink(models.Model):
    """Fiber between two campuses.

    A pair of sites is joined at most once: rows are stored with `site_a_id < site_b_id` (the
    `save()` of a form or service orders them), so (a, b) and (b, a) cannot both exist.
    """

    site_a = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="links_as_a")
    site_b = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="links_as_b")
    route_km = models.FloatField(help_text="Fiber route length, km (often 1.2–2× straight line).")
    bandwidth_gbps = models.FloatField(help_text="Provisioned bandwidth, Gbit/s.")
    efficiency = models.FloatField(
        default=0.9, help_text="Fraction of the bandwidth collectives achieve (0–1]."
    )
    equipment_latency_us = models.FloatField(
        default=20.0, help_text="One-way latency of optics, switches and NICs, µs."
    )
    commissioned_year = models.PositiveSmallIntegerField()
    loss_rate = models.FloatField(default=0.0, help_text="Packet loss fraction [0–1).")
    window_bytes = models.PositiveBigIntegerField(
        default=4 * 1024 * 1024, help_text="Bytes one flow may have in flight."
    )
    streams = models.PositiveIntegerField(
        default=8,
        help_text=(
            "TCP flows per collective connection (NCCL: NCCL_NSOCKS_PERTHREAD × "
            "NCCL_SOCKET_NTHREADS); the model multiplies them by the connections the "
            "parallelism puts on the link."
        ),
    )
    rendezvous_rtts = models.FloatField(
        default=0.5,
        help_text=(
            "Round trips each collective step waits before sending, on top of the one-way "
            "delay (0.5: a receiver-ready rendezvous, one round trip per step in all; 0: eager)."
        ),
    )

    class Meta:
        ordering = ["site_a__name", "site_b__name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(site_a__lt=F("site_b")), name="sitelink_ordered_pair"
            ),
            models.UniqueConstraint(fields=["site_a", "site_b"], name="sitelink_unique_pair"),
            models.CheckConstraint(
                condition=Q(route_km__gt=0) & Q(bandwidth_gbps__gt=0),
                name="sitelink_positive",
            ),
            models.CheckConstraint(
                condition=Q(efficiency__gt=0) & Q(efficiency__lte=1),
                name="sitelink_efficiency_range",
            ),
            models.CheckConstraint(
                condition=Q(loss_rate__gte=0) & Q(loss_rate__lt=1),
                name="sitelink_loss_range",
            ),
            models.CheckConstraint(
                condition=Q(equipment_latency_us__gte=0), name="sitelink_latency_nonneg"
            ),
            models.CheckConstraint(
                condition=Q(window_bytes__gt=0) & Q(streams__gt=0),
                name="sitelink_transport_positive",
            ),
            models.CheckConstraint(
                condition=Q(rendezvous_rtts__gte=0), name="sitelink_rendezvous_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site_a} ↔ {self.site_b}"

    def clean(self) -> None:
        if self.site_a_id and self.site_a_id == self.site_b_id:
            raise ValidationError("A link joins two different sites.")
        self.order_pair()

    def order_pair(self) -> None:
        """Store the pair with the lower id first, the canonical form the constraints expect."""
        if self.site_a_id and self.site_b_id and self.site_a_id > self.site_b_id:
            self.site_a_id, self.site_b_id = self.site_b_id, self.site_a_id

    @property
    def handshake_rtts(self) -> float:
        """The former integer field's name, kept readable and writable (``rendezvous_rtts``)."""
        return self.rendezvous_rtts

    @handshake_rtts.setter
    def handshake_rtts(self, value: float) -> None:
        self.rendezvous_rtts = float(value)

    @property
    def one_way_latency_us(self) -> float:
        """Propagation over the route (4.9 µs/km) plus equipment latency, one way, µs."""
        return float(terms.one_way_latency_s(self.route_km, self.equipment_latency_us)) * 1e6

    @property
    def usable_gbps(self) -> float:
        """What one collective connection can push through, Gbit/s: the line rate × efficiency,
        capped by the bandwidth-delay product `streams · window / RTT` and, on a lossy link,
        by TCP's loss bound (the performance model's own term), for the configured `streams`
        flows. An aging link with small windows is latency-bound well below its nominal rate
        for one connection; a training job opens many in parallel (one per ring the
        parallelism makes), which the model counts per scenario (docs/model.md, "Links")."""
        rtt_s = 2 * self.one_way_latency_us * 1e-6
        usable = terms.link_usable_bytes_per_s(
            self.bandwidth_gbps,
            self.efficiency,
            self.window_bytes,
            self.streams,
            rtt_s,
            self.loss_rate,
        )
        return float(usable) * 8 / 1e9


class Cluster(models.Model):
    """A pool of identical nodes in one site, on one fabric."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    accelerator = models.ForeignKey(
        AcceleratorModel, on_delete=models.PROTECT, related_name="clusters"
    )
    gpus_per_node = models.PositiveSmallIntegerField(
        help_text="GPUs per node (8 for an HGX server, 72 for an NVL72 rack)."
    )
    fabric_gbps_per_gpu = models.FloatField(help_text="Scale-out fabric per GPU, Gbit/s.")

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="cluster_unique_name_per_site"),
            models.CheckConstraint(
                condition=Q(gpus_per_node__gt=0), name="cluster_gpus_per_node_positive"
            ),
            models.CheckConstraint(
                condition=Q(fabric_gbps_per_gpu__gt=0), name="cluster_fabric_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.slug}/{self.name}" if self.site_id else self.name


class Node(models.Model):
    """One leasable unit of a cluster (a server, or an NVL72 rack): hostname unique fleet-wide."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nodes")
    hostname = models.CharField(max_length=100, unique=True)
    status = models.CharField(
        max_length=16, choices=NodeStatus.choices, default=NodeStatus.ACTIVE, db_index=True
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["hostname"]
        indexes = [models.Index(fields=["cluster", "status"], name="node_cluster_status")]

    def __str__(self) -> str:
        return self.hostname


# --- The fleet under a lease (docs/rules/fleet.md) ------------------------------------------
# Facts about machines, whoever holds them: incidents, health events from monitoring,
# maintenance windows. What a tenant sees of them follows from what it holds (leasing).


class Incident(models.Model):
    """Something wrong with one node, from its report (`opened_at`) to its resolution.

    While a node has an open incident it is never allocated anew. Its severity drives the
    node's status (`clusters.fleet.node_refresh_status`). The downtime it causes a lease line
    runs from `opened_at` until it is resolved or the node is replaced and the spare accepted.
    """

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="incidents")
    category = models.CharField(max_length=16, choices=IncidentCategory.choices)
    severity = models.CharField(
        max_length=16,
        choices=[c for c in Severity.choices if c[0] != Severity.OK],
        default=Severity.DOWN,
    )
    source = models.CharField(max_length=16, choices=IncidentSource.choices)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    opened_at = models.DateTimeField(help_text="When it was reported: the downtime clock starts.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    description = models.TextField(max_length=4000, blank=True, default="")
    evidence = models.JSONField(default=dict, blank=True)
    reporter = models.CharField(
        max_length=120,
        blank=True,
        default="",
        help_text="Who reported it: a tenant, a monitoring source or an acceptance test.",
    )
    opened_by = actor_field()
    resolved_by = actor_field()
    resolution = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status=IncidentStatus.OPEN) & Q(resolved_at__isnull=True))
                | (
                    Q(status=IncidentStatus.RESOLVED)
                    & Q(resolved_at__isnull=False)
                    & Q(resolved_at__gte=F("opened_at"))
                ),
                name="incident_resolved_iff_resolved_at",
            ),
            models.CheckConstraint(
                condition=~Q(severity=Severity.OK), name="incident_severity_not_ok"
            ),
        ]
        indexes = [
            models.Index(fields=["node", "status"], name="incident_node_status"),
            models.Index(fields=["status", "opened_at"], name="incident_status_opened"),
            models.Index(fields=["node", "opened_at"], name="incident_node_opened"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} incident on {self.node} ({self.opened_at:%Y-%m-%d})"


class MonitoringSource(models.Model):
    """A monitoring system allowed to push health events (operator ingestion API).

    Its own credential, not a tenant key: shown once at creation, stored as a SHA-256 hash
    with a short prefix in clear for lookup, revocable.
    """

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = actor_field()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HealthEvent(models.Model):
    """One health observation pushed by a monitoring source, applied once per event id."""

    source = models.ForeignKey(
        MonitoringSource, on_delete=models.PROTECT, related_name="health_events"
    )
    event_id = models.CharField(max_length=128)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="health_events")
    observed_at = models.DateTimeField()
    received_at = models.DateTimeField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    category = models.CharField(
        max_length=16, choices=IncidentCategory.choices, blank=True, default=""
    )
    message = models.CharField(max_length=500, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="health_events",
        help_text="The incident this event opened or resolved, if any.",
    )

    class Meta:
        ordering = ["-observed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="healthevent_once"),
        ]
        indexes = [models.Index(fields=["node", "observed_at"], name="healthevent_node_at")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.event_id} {self.severity}"


class MaintenanceWindow(models.Model):
    """Planned or emergency work taking nodes out of service over `[starts_at, ends_at)`.

    Scope: chosen nodes (`nodes`), a whole cluster, or a whole campus (`site`). It counts as
    planned only when announced at least 7 days before it starts (docs/rules/fleet.md);
    `kind` is what the operator declared.
    """

    title = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=MaintenanceScope.choices)
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="maintenance_windows"
    )
    cluster = models.ForeignKey(
        Cluster,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="maintenance_windows",
    )
    nodes = models.ManyToManyField(Node, blank=True, related_name="maintenance_windows")
    category = models.CharField(max_length=16, choices=MaintenanceCategory.choices)
    kind = models.CharField(max_length=16, choices=MaintenanceKind.choices)
    status = models.CharField(
        max_length=16,
        choices=MaintenanceStatus.choices,
        default=MaintenanceStatus.SCHEDULED,
        db_index=True,
    )
    announced_at = models.DateTimeField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    description = models.TextField(max_length=4000, blank=True, default="")
    created_by = actor_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = actor_field()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="maintenance_end_after_start"
            ),
            models.CheckConstraint(
                condition=(
                    Q(scope=MaintenanceScope.SITE) & Q(site__isnull=False) & Q(cluster__isnull=True)
                )
                | (
                    Q(scope=MaintenanceScope.CLUSTER)
                    & Q(cluster__isnull=False)
                    & Q(site__isnull=True)
                )
                | (
                    Q(scope=MaintenanceScope.NODES) & Q(cluster__isnull=True) & Q(site__isnull=True)
                ),
                name="maintenance_scope_matches_target",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "starts_at"], name="maintenance_status_start"),
            models.Index(fields=["starts_at", "ends_at"], name="maintenance_period"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"


# Healthy nodes may be allocated; degraded ones still run but are not offered for new leases.
ALLOCATABLE_STATUSES = (NodeStatus.ACTIVE,)

__all__ = [
    "ALLOCATABLE_STATUSES",
    "AcceleratorModel",
    "Cluster",
    "HealthEvent",
    "Incident",
    "MaintenanceWindow",
    "MonitoringSource",
    "Node",
    "Site",
    "SiteLink",
]


class Calibration(models.Model):
    """A fit of a measured all-reduce, kept with the data it came from (docs/model.md).

    ``data`` holds the measurement as parsed (nccl-tests rows or harness rows), ``raw`` the text
    as given; the fitted per-step latency and usable throughput are what the scenario uses, the
    latest ``measured_at`` winning (ties: the latest recorded). An nccl-tests run is fitted
    piecewise: ``regimes`` holds its size ranges, the latency is the smallest sizes' and the
    throughput the largest sizes' (docs/model.md, "Calibration"); the errors are the piecewise
    fit's.
    """

    source = models.CharField(max_length=16, choices=CalibrationSource.choices)
    ranks = models.PositiveIntegerField(help_text="Ranks of the measured all-reduce.")
    measured_at = models.DateTimeField(help_text="When the measurement was taken.")
    created_at = models.DateTimeField()
    # Empty when what recorded it acted for nobody (an import with no signer); `origin` says what.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    origin = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="What recorded it: the calibrate command, or the acceptance upload it came with.",
    )
    data = models.JSONField(help_text="The measurement points the fit used.")
    raw = models.TextField(blank=True, default="", help_text="The measurement text as given.")
    step_latency_us = models.FloatField(help_text="Fitted latency of one collective step, µs.")
    usable_gbps = models.FloatField(help_text="Fitted usable throughput, Gbit/s.")
    points = models.PositiveIntegerField()
    median_rel_error = models.FloatField(help_text="Median |predicted − measured| / measured.")
    max_rel_error = models.FloatField(help_text="Largest |predicted − measured| / measured.")
    # nccl-tests runs are fitted piecewise; empty for a one-regime fit (the harness, and rows
    # recorded before regimes were stored), whose figures above are its only ring.
    regimes = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="The fitted size ranges, smallest first, each with its own latency and rate.",
    )

    class Meta:
        abstract = True

    @classmethod
    def checks(cls, prefix: str) -> list[models.BaseConstraint]:
        return [
            models.CheckConstraint(
                condition=Q(step_latency_us__gt=0) & Q(usable_gbps__gt=0),
                name=f"{prefix}_fit_positive",
            ),
            models.CheckConstraint(
                condition=Q(ranks__gte=2) & Q(points__gte=2), name=f"{prefix}_enough_data"
            ),
            models.CheckConstraint(
                condition=Q(median_rel_error__gte=0) & Q(max_rel_error__gte=F("median_rel_error")),
                name=f"{prefix}_errors_ordered",
            ),
            models.CheckConstraint(
                condition=Q(source__in=CalibrationSource.values), name=f"{prefix}_source_valid"
            ),
        ]


class LinkCalibration(Calibration):
    """A measured all-reduce across one inter-site link and its fitted (latency, bandwidth)."""

    link = models.ForeignKey(SiteLink, on_delete=models.CASCADE, related_name="calibrations")

    class Meta:
        ordering = ["-measured_at", "-id"]
        indexes = [models.Index(fields=["link", "-measured_at"], name="linkcal_latest")]
        constraints = Calibration.checks("linkcal")

    def __str__(self) -> str:
        return f"{self.link} @ {self.measured_at:%Y-%m-%d %H:%M}"


class ClusterCalibration(Calibration):
    """A measured all-reduce inside one cluster (nccl-tests) and its fitted bus bandwidth."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="calibrations")

    class Meta:
        ordering = ["-measured_at", "-id"]
        indexes = [models.Index(fields=["cluster", "-measured_at"], name="clustercal_latest")]
        constraints = Calibration.checks("clustercal")

    def __str__(self) -> str:
        return f"{self.cluster} @ {self.measured_at:%Y-%m-%d %H:%M}"
