"""Operator admin for the inventory: computed figures read-only, guarded node changes (held
nodes keep their cluster and status, bulk changes are confirmed on a page showing the leases,
tenants and rent they touch), and maintenance windows."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from common.admin import record_change, run_per_row, unit_label
from common.money import format_money

from . import fleet, guards, selectors, services
from .choices import MaintenanceStatus, NodeStatus
from .models import AcceleratorModel, Cluster, MaintenanceWindow, Node, Site, SiteLink

if TYPE_CHECKING:
    from django.contrib.auth.models import User
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

    @admin.display(description="usable Gbit/s per connection (window-capped)")
    def usable(self, obj: SiteLink) -> str:
        return _number(obj.usable_gbps, 1) if obj.route_km is not None else "—"

    @admin.display(description=unit_label("one-way latency", "µs"))
    def one_way_latency(self, obj: SiteLink) -> str:
        return _number(obj.one_way_latency_us, 1) if obj.route_km is not None else "—"


# --- guarded inventory (docs/rules/fleet.md, "Guarded inventory") ---------------------------------


def _url(name: str, *args: object) -> str:
    """An admin URL, or "" where that admin is not installed (yet)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _holders(items: list[guards.Holding]) -> str:
    return ", ".join(sorted({f"{h.lease_number} ({h.tenant})" for h in items}))


def held_status_message(items: list[guards.Holding]) -> str:
    """Why a held node's status cannot be typed, and where to go instead."""
    return (
        f"Held by {_holders(items)}: a held node's status changes only through an incident "
        "(down or degraded) or a maintenance window. Open an incident or schedule a window."
    )


class NodeForm(forms.ModelForm):
    """A held node keeps its cluster, and its status is not typed (the guards)."""

    class Meta:
        model = Node
        fields = ("cluster", "hostname", "status", "note")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        guarded = {"cluster", "status"} & set(self.changed_data)
        if self.instance.pk and guarded:
            items = guards.holdings([self.instance.pk], now=timezone.now())
            if items and "cluster" in guarded:
                self.add_error(
                    "cluster", f"Held by {_holders(items)}: a held node cannot change cluster."
                )
            if items and "status" in guarded:
                self.add_error("status", held_status_message(items))
        return data


class ClusterForm(forms.ModelForm):
    """A cluster whose nodes leases hold stays on its campus."""

    class Meta:
        model = Cluster
        fields = ("site", "name", "slug", "accelerator", "gpus_per_node", "fabric_gbps_per_gpu")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk and "site" in self.changed_data:
            items = guards.holdings(
                Node.objects.filter(cluster=self.instance).values("pk"), now=timezone.now()
            )
            if items:
                self.add_error(
                    "site",
                    f"Held by {_holders(items)}: a cluster whose nodes leases hold cannot "
                    "move to another campus.",
                )
        return data


class MoveForm(forms.Form):
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.select_related("site").order_by("site__name", "name"),
        label="Move to cluster",
    )


class NodeNeedingAttentionInline(admin.TabularInline):
    """Only the nodes that are not active: a cluster may hold 12,500 nodes. Status is read
    only here: it changes through incidents, windows or the node list's guarded actions."""

    model = Node
    extra = 0
    fields = ("hostname", "status", "status_changed_at", "note")
    readonly_fields = ("hostname", "status", "status_changed_at")
    verbose_name_plural = "nodes needing attention (not active)"
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Node]:
        return super().get_queryset(request).exclude(status=NodeStatus.ACTIVE)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterForm
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
    label = status.label.lower()

    @admin.action(description=f"Mark selected nodes {label}…", permissions=["change"])
    def action(
        modeladmin: NodeAdmin, request: HttpRequest, queryset: QuerySet[Node]
    ) -> TemplateResponse | None:
        return modeladmin.bulk_change(
            request,
            queryset,
            action=f"mark_{status.value}",
            title=f"Mark nodes {label}",
            change_text=f"marked {label}",
            logged=lambda _form: f"Marked {label}",
            held_rule="keep their status: it changes only through an incident or a window.",
            apply=lambda ids, _form: services.node_set_status(node_ids=ids, status=status),
        )

    action.__name__ = f"mark_{status.value}"
    return action


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeForm
    list_display = ("hostname", "cluster", "site", "accelerator", "status", "status_changed_at")
    list_filter = ("status", "cluster__site", "cluster__accelerator", "cluster")
    search_fields = ("hostname",)
    list_select_related = ("cluster__site", "cluster__accelerator")
    readonly_fields = ("status_changed_at",)
    list_per_page = 100
    # Counting 30,000+ rows twice per page is wasted work; the filtered count is enough.
    show_full_result_count = False
    actions = [*(_status_action(s) for s in NodeStatus), "move_to_cluster"]

    @admin.display(description="site", ordering="cluster__site__name")
    def site(self, obj: Node) -> Site:
        return obj.cluster.site

    @admin.display(description="model", ordering="cluster__accelerator__name")
    def accelerator(self, obj: Node) -> AcceleratorModel:
        return obj.cluster.accelerator

    @admin.action(description="Move selected nodes to another cluster…", permissions=["change"])
    def move_to_cluster(
        self, request: HttpRequest, queryset: QuerySet[Node]
    ) -> TemplateResponse | None:
        return self.bulk_change(
            request,
            queryset,
            action="move_to_cluster",
            title="Move nodes to another cluster",
            change_text="moved to the cluster chosen below",
            logged=lambda form: f"Moved to cluster {form.cleaned_data['cluster']}",
            held_rule="never change cluster: their leases name it.",
            form_class=MoveForm,
            apply=lambda ids, form: services.nodes_move(
                node_ids=ids, cluster=form.cleaned_data["cluster"]
            ),
        )

    def bulk_change(
        self,
        request: HttpRequest,
        queryset: QuerySet[Node],
        *,
        action: str,
        title: str,
        change_text: str,
        held_rule: str,
        apply: Callable[[list[int], Any], int],
        logged: Callable[[Any], str],
        form_class: type[forms.Form] | None = None,
    ) -> TemplateResponse | None:
        """Two steps. First a confirmation page: the nodes selected, those leases hold (left
        unchanged) with their leases, tenants and monthly rent. Then, confirmed ("apply"), the
        change to the nodes no lease holds, recorded as the operator's."""
        now = timezone.now()
        items = guards.holdings(queryset.values("pk"), now=now)
        held = {h.node_id for h in items}
        form = form_class(request.POST if "apply" in request.POST else None) if form_class else None
        if "apply" in request.POST and (form is None or form.is_valid()):
            free = [pk for pk in queryset.values_list("pk", flat=True) if pk not in held]
            changed = apply(free, form) if free else 0
            record_change(request.user, Node.objects.filter(pk__in=free), logged(form))
            self.message_user(
                request,
                f"{changed:,} node(s) {change_text.split(' (')[0]}"
                f"; {len(free) - changed:,} already were.",
                messages.SUCCESS,
            )
            if held:
                self.message_user(
                    request,
                    f"{len(held):,} node(s) left unchanged. " + held_status_message(items),
                    messages.WARNING,
                )
            return None
        impact = guards.impact(items)
        select_across = request.POST.get("select_across") == "1"
        selected = queryset.count()
        rents: dict[str, Decimal] = {}
        for row in impact:
            rents[row.currency] = rents.get(row.currency, Decimal(0)) + row.monthly_rent
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": select_across,
            "ids": [] if select_across else list(queryset.values_list("pk", flat=True)),
            "selected": selected,
            "held": len(held),
            "to_change": selected - len(held),
            "change_text": change_text,
            "held_rule": held_rule,
            "impact": [
                {
                    "lease_number": row.lease_number,
                    "tenant": row.tenant,
                    "node_count": len(row.nodes),
                    "rent": format_money(row.monthly_rent, row.currency),
                }
                for row in impact
            ],
            "tenants": sorted({row.tenant for row in impact}),
            "total_rent": " + ".join(format_money(v, c) for c, v in sorted(rents.items())),
            "form": form or (form_class() if form_class else None),
            "window_add": _url("admin:clusters_maintenancewindow_add"),
            "incident_add": _url("admin:clusters_incident_add"),
        }
        return TemplateResponse(request, "admin/clusters/node/confirm_bulk.html", context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Held nodes are protected from deletion, whatever else would go with them."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        pks = [o.pk for o in objs]
        items = guards.holdings(pks, now=timezone.now())
        by_node: dict[int, list[guards.Holding]] = {}
        for h in items:
            by_node.setdefault(h.node_id, []).append(h)
        if not by_node:
            return deleted, counts, perms_needed, protected
        held = [
            f"Node {items[0].hostname}: held by {_holders(items)} (a held node cannot be deleted)"
            for items in by_node.values()
        ]
        # The page shows missing permissions before protected objects; the guard is the reason
        # that matters here, and a protected list alone refuses the deletion.
        return deleted, counts, set(), [*held, *protected]


# --- maintenance windows (docs/rules/fleet.md, "Maintenance windows") ---------------------------


class CampusFilter(admin.SimpleListFilter):
    """Windows touching a campus, whatever their scope (the campus, one of its clusters, or
    nodes in it)."""

    title = "campus"
    parameter_name = "campus"

    def lookups(self, request, model_admin):
        return [(str(s.pk), s.name) for s in Site.objects.order_by("name")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        site = self.value()
        return queryset.filter(
            Q(site_id=site) | Q(cluster__site_id=site) | Q(nodes__cluster__site_id=site)
        ).distinct()


class ClusterScopeFilter(admin.SimpleListFilter):
    title = "cluster"
    parameter_name = "in_cluster"

    def lookups(self, request, model_admin):
        return [
            (str(c.pk), str(c))
            for c in Cluster.objects.select_related("site").order_by("site__name", "name")
        ]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        cluster = Cluster.objects.filter(pk=self.value()).first()
        if cluster is None:
            return queryset.none()
        return queryset.filter(
            Q(site_id=cluster.site_id) | Q(cluster=cluster) | Q(nodes__cluster=cluster)
        ).distinct()


class MaintenanceWindowForm(forms.ModelForm):
    """Scope pickers (a campus, a cluster, or nodes); the services' refusals shown beside the
    fields before anything is written (`fleet.window_check`)."""

    class Meta:
        model = MaintenanceWindow
        fields = (
            "title",
            "description",
            "scope",
            "site",
            "cluster",
            "nodes",
            "category",
            "kind",
            "announced_at",
            "starts_at",
            "ends_at",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        needed = ("scope", "starts_at", "ends_at")
        if any(data.get(name) is None for name in needed):
            return data  # the fields' own errors say what is missing
        window = self.instance
        if window.pk and window.status == MaintenanceStatus.IN_PROGRESS:
            moved = {"scope", "site", "cluster", "nodes", "starts_at"} & set(self.changed_data)
            if moved:
                self.add_error(None, fleet.WindowStarted.default_message)
                return data
        try:
            fleet.window_check(
                scope=data["scope"],
                site=data.get("site"),
                cluster=data.get("cluster"),
                nodes=data.get("nodes"),
                announced_at=data.get("announced_at") or window.announced_at or timezone.now(),
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
            )
        except fleet.InvalidWindow as exc:
            field = exc.extra.get("field")
            self.add_error(field if field in self.fields else None, exc.message)
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    """Windows are written by the fleet services (announce, change, cancel: events emitted,
    nodes refreshed); the status moves with the clock (the 5-minute job)."""

    form = MaintenanceWindowForm
    list_display = (
        "title",
        "scope_names",
        "kind",
        "planned_or_late",
        "category",
        "status",
        "starts_at",
        "ends_at",
        "deferral_requests",
    )
    list_filter = ("status", "kind", "category", CampusFilter, ClusterScopeFilter)
    search_fields = ("title", "description")
    list_select_related = ("site", "cluster__site")
    autocomplete_fields = ("site", "cluster", "nodes")
    date_hierarchy = "starts_at"
    actions = ["cancel_selected"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"announced_at": timezone.now(), **super().get_changeform_initial_data(request)}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        base = ("status", "created_by", "updated_by", "created_at", "updated_at")
        if obj is None:
            return base
        if obj.status in (MaintenanceStatus.DONE, MaintenanceStatus.CANCELLED):
            return (*MaintenanceWindowForm.Meta.fields, *base)
        return ("announced_at", *base)

    @admin.display(description="scope")
    def scope_names(self, obj: MaintenanceWindow) -> str:
        if obj.site is not None:
            return f"campus {obj.site.name}"
        if obj.cluster is not None:
            return f"cluster {obj.cluster}"
        hostnames = list(obj.nodes.order_by("hostname").values_list("hostname", flat=True)[:4])
        more = obj.nodes.count() - len(hostnames)
        return ", ".join(hostnames) + (f" and {more:,} more" if more > 0 else "")

    @admin.display(description="planned (≥ 7 days' notice)", boolean=True)
    def planned_or_late(self, obj: MaintenanceWindow) -> bool:
        return fleet.counts_as_planned(obj)

    @admin.display(description="deferrals")
    def deferral_requests(self, obj: MaintenanceWindow) -> str:
        url = _url("admin:leasing_maintenancedeferral_changelist")
        if not url:
            return "—"
        return format_html('<a href="{}?window__id__exact={}">requests</a>', url, obj.pk)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Through the services: `window_create` or `window_change` as the operator."""
        data = form.cleaned_data
        now = timezone.now()
        actor = cast("User", request.user)
        scope = {
            "scope": data["scope"],
            "site": data.get("site"),
            "cluster": data.get("cluster"),
            "nodes": list(data.get("nodes") or []),
        }
        if not change:
            window = fleet.window_create(
                title=data["title"],
                description=data.get("description", ""),
                category=data["category"],
                kind=data["kind"],
                announced_at=data.get("announced_at") or now,
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                now=now,
                actor=actor,
                **scope,
            )
        else:
            changed = set(form.changed_data)
            fields = {
                name: data[name] for name in fleet.WINDOW_FIELDS if name in changed and name in data
            }
            if {"scope", "site", "cluster", "nodes"} & changed:
                fields.update(scope)
            window = fleet.window_change(window=obj, now=now, actor=actor, **fields)
        obj.pk = window.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The nodes were set by the service; only inlines, if any, are saved here."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(
        description="Cancel selected windows (end those in progress now)", permissions=["change"]
    )
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[MaintenanceWindow]) -> None:
        now = timezone.now()
        run_per_row(
            self,
            request,
            queryset,
            "Cancelled",
            lambda w: fleet.window_cancel(window=w, now=now, actor=cast("User", request.user)),
        )


# Link and cluster calibrations (docs/model.md, "Calibration"); incidents, monitoring sources,
# health events (docs/rules/fleet.md).
from . import admin_calibration, admin_fleet  # noqa: E402, F401
