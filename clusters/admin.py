"""Operator admin for the inventory: computed figures read-only, bulk node status actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from common.admin import record_change

from . import selectors, services
from .choices import NodeStatus
from .models import AcceleratorModel, Cluster, Node, Site, SiteLink

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from .selectors import AcceleratorFigures, SiteFigures

    AnnotatedAccelerator = WithAnnotations[AcceleratorModel, AcceleratorFigures]
    AnnotatedSite = WithAnnotations[Site, SiteFigures]


def _number(value: float | int | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


@admin.register(AcceleratorModel)
class AcceleratorModelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "generation",
        "peak_tflops",
        "hbm_gb",
        "scaleout_gbps",
        "reference_mfu",
        "market_price_per_gpu_hour",
        "deployed_gpus",
    )
    list_filter = ("generation",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnnotatedAccelerator]:
        return selectors.accelerator_list()

    @admin.display(description="GPUs deployed", ordering="gpu_total")
    def deployed_gpus(self, obj: AnnotatedAccelerator) -> str:
        return _number(obj.gpu_total)


class ClusterInline(admin.TabularInline):
    model = Cluster
    extra = 0
    fields = ("name", "slug", "accelerator", "gpus_per_node", "fabric_gbps_per_gpu", "link")
    readonly_fields = ("link",)
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cluster]:
        return super().get_queryset(request).select_related("accelerator")

    @admin.display(description="nodes")
    def link(self, obj: Cluster) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:clusters_node_changelist") + f"?cluster__id__exact={obj.pk}"
        return format_html('<a href="{}">nodes</a>', url)


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "timezone",
        "power_mw",
        "clusters",
        "gpus",
        "nodes",
        "peak_pflops_display",
    )
    search_fields = ("name", "slug")
    list_filter = (("timezone", admin.AllValuesFieldListFilter),)  # only zones in use
    prepopulated_fields = {"slug": ("name",)}
    inlines = (ClusterInline,)
    readonly_fields = ("gpus", "nodes", "peak_pflops_display", "capacity_by_model")

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnnotatedSite]:
        return selectors.site_list()

    @admin.display(description="clusters", ordering="cluster_total")
    def clusters(self, obj: AnnotatedSite) -> int:
        return obj.cluster_total

    @admin.display(description="GPUs", ordering="gpu_total")
    def gpus(self, obj: AnnotatedSite) -> str:
        return _number(obj.gpu_total)

    @admin.display(description="nodes", ordering="node_total")
    def nodes(self, obj: AnnotatedSite) -> str:
        return _number(obj.node_total)

    @admin.display(description="peak PFLOP/s (BF16)", ordering="peak_pflops")
    def peak_pflops_display(self, obj: AnnotatedSite) -> str:
        return _number(obj.peak_pflops, 1)

    @admin.display(description="GPUs per model")
    def capacity_by_model(self, obj: Site) -> str:
        rows = [r for r in selectors.capacity_by_site_and_model() if r["site_slug"] == obj.slug]
        return ", ".join(f"{r['accelerator']}: {r['gpus']:,}" for r in rows) or "—"


@admin.register(SiteLink)
class SiteLinkAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "route_km",
        "bandwidth_gbps",
        "usable",
        "efficiency",
        "one_way_latency",
        "window_bytes",
        "streams",
        "commissioned_year",
    )
    list_filter = ("commissioned_year", "site_a", "site_b")
    search_fields = ("site_a__name", "site_b__name")
    list_select_related = ("site_a", "site_b")
    readonly_fields = ("one_way_latency", "usable")

    @admin.display(description="usable Gbit/s (window-capped)")
    def usable(self, obj: SiteLink) -> str:
        return _number(obj.usable_gbps, 1) if obj.route_km is not None else "—"

    @admin.display(description="one-way latency (µs)")
    def one_way_latency(self, obj: SiteLink) -> str:
        return _number(obj.one_way_latency_us, 1) if obj.route_km is not None else "—"


class NodeNeedingAttentionInline(admin.TabularInline):
    """Only the nodes that are not active: a cluster may hold 12,500 nodes."""

    model = Node
    extra = 0
    fields = ("hostname", "status", "status_changed_at", "note")
    readonly_fields = ("hostname", "status_changed_at")
    verbose_name_plural = "nodes needing attention (not active)"
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Node]:
        return super().get_queryset(request).exclude(status=NodeStatus.ACTIVE)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "site",
        "accelerator",
        "gpus_per_node",
        "fabric_gbps_per_gpu",
        "node_count",
        "gpu_count",
        "peak_pflops_display",
    )
    list_filter = ("site", "accelerator", "accelerator__generation")
    search_fields = ("name", "slug", "site__name", "accelerator__name")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("node_count", "gpu_count", "peak_pflops_display", "status_counts")
    inlines = (NodeNeedingAttentionInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cluster]:
        return selectors.cluster_list()

    @admin.display(description="nodes", ordering="node_total")
    def node_count(self, obj: Cluster) -> str:
        return _number(getattr(obj, "node_total", None))

    @admin.display(description="GPUs", ordering="gpu_total")
    def gpu_count(self, obj: Cluster) -> str:
        return _number(getattr(obj, "gpu_total", None))

    @admin.display(description="peak PFLOP/s", ordering="peak_pflops")
    def peak_pflops_display(self, obj: Cluster) -> str:
        return _number(getattr(obj, "peak_pflops", None), 1)

    @admin.display(description="nodes by status")
    def status_counts(self, obj: Cluster) -> str:
        if not obj.pk:
            return "—"
        counts = selectors.node_status_counts(cluster=obj)
        if not counts:
            return "no nodes"
        base = reverse("admin:clusters_node_changelist")
        return format_html_join(
            " · ",
            '<a href="{}?cluster__id__exact={}&status__exact={}">{}: {}</a>',
            (
                (base, obj.pk, status, NodeStatus(status).label, f"{n:,}")
                for status, n in counts.items()
            ),
        )


def _status_action(status: NodeStatus):
    @admin.action(description=f"Mark selected nodes {status.label.lower()}", permissions=["change"])
    def action(modeladmin: NodeAdmin, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        changed = services.node_set_status(
            node_ids=queryset.values_list("pk", flat=True), status=status
        )
        record_change(request.user, queryset, f"Marked {status.label.lower()}")
        unchanged = queryset.count() - changed
        modeladmin.message_user(
            request,
            f"{changed} node(s) marked {status.label.lower()}"
            + (f"; {unchanged} already were." if unchanged else "."),
            messages.SUCCESS,
        )

    action.__name__ = f"mark_{status.value}"
    return action


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("hostname", "cluster", "site", "accelerator", "status", "status_changed_at")
    list_filter = ("status", "cluster__site", "cluster__accelerator", "cluster")
    search_fields = ("hostname",)
    list_select_related = ("cluster__site", "cluster__accelerator")
    readonly_fields = ("status_changed_at",)
    list_per_page = 100
    # Counting 30,000+ rows twice per page is wasted work; the filtered count is enough.
    show_full_result_count = False
    actions = [_status_action(s) for s in NodeStatus]

    @admin.display(description="site", ordering="cluster__site__name")
    def site(self, obj: Node) -> Site:
        return obj.cluster.site

    @admin.display(description="model", ordering="cluster__accelerator__name")
    def accelerator(self, obj: Node) -> AcceleratorModel:
        return obj.cluster.accelerator


# Incidents, monitoring sources, health events (docs/rules/fleet.md).
from . import admin_fleet  # noqa: E402, F401
