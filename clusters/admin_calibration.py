"""Operator admin for calibrations: evidence, so listed and shown, never added, edited or deleted.

A calibration is recorded by `manage.py calibrate` or by an acceptance upload that carried an
nccl-tests run (`clusters/calibrations.py`). Its page shows the points it was fitted to, what the
fit predicts for each, and the two drawn against each other; an nccl-tests calibration also
lists its regimes (size ranges fitted each with its own ring) and colours the chart by regime.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from common import plots
from common.admin import ReadOnlyAdmin, unit_label
from common.display import instant

from . import calibrations
from .models import ClusterCalibration, LinkCalibration
from .perfmodel.plot import draw_predicted_vs_measured

Calibration = LinkCalibration | ClusterCalibration

# The list needs neither the points nor the raw text (kilobytes per row).
_LIST_DEFERRED = ("data", "raw")
# What a calibration's list shows after the link or cluster it belongs to (inside 1440 px).
_COLUMNS = ("measured", "usable", "latency", "ranks", "errors", "source", "recorded")
# What a calibration's page shows after the link or cluster it belongs to.
_EVIDENCE = (
    "measured",
    "source",
    "ranks",
    "usable",
    "latency",
    "errors",
    "regimes_table",
    "recorded",
    "chart",
    "points_table",
    "raw_text",
)


class CalibrationAdmin(ReadOnlyAdmin):
    """Shared by link and cluster calibrations: the fit in the list, the evidence on the page."""

    date_hierarchy = "measured_at"
    list_filter = ("source",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request).select_related("created_by")
        match = request.resolver_match
        if match is not None and (match.url_name or "").endswith("_changelist"):
            queryset = queryset.defer(*_LIST_DEFERRED)
        return queryset

    @admin.display(description="measured at", ordering="measured_at")
    def measured(self, obj: Calibration) -> str:
        return instant(obj.measured_at)

    @admin.display(description="bus bandwidth (Gbit/s)", ordering="usable_gbps")
    def usable(self, obj: Calibration) -> str:
        return f"{obj.usable_gbps:,.1f}"

    @admin.display(description=unit_label("step latency", "µs"), ordering="step_latency_us")
    def latency(self, obj: Calibration) -> str:
        return f"{obj.step_latency_us:,.2f}"

    @admin.display(description="fit error (median / max)")
    def errors(self, obj: Calibration) -> str:
        return f"{obj.median_rel_error:.1%} / {obj.max_rel_error:.1%} over {obj.points} sizes"

    @admin.display(description="recorded by")
    def recorded(self, obj: Calibration) -> SafeString:
        who = obj.created_by.get_username() if obj.created_by is not None else "—"
        return format_html(
            "{} on {}<br><small>{}</small>", who, instant(obj.created_at), obj.origin or "—"
        )

    @admin.display(description="regimes")
    def regimes_table(self, obj: Calibration) -> SafeString | str:
        """The piecewise fit's size ranges (the bandwidth shown above is the last one's, the
        latency the first one's); one ring when none is stored."""
        if not obj.regimes:
            return "one ring over every size"
        return format_html(
            "<table><tr><th>sizes</th><th>step latency (µs)</th><th>bus bandwidth (Gbit/s)</th>"
            "<th>error (median / max)</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        calibrations.regime_span(r),
                        f"{r['step_latency_us']:,.2f}",
                        "—" if r["usable_gbps"] is None else f"{r['usable_gbps']:,.1f}",
                        f"{r['median_rel_error']:.1%} / {r['max_rel_error']:.1%}",
                    )
                    for r in obj.regimes
                ),
            ),
        )

    @admin.display(description="predicted vs measured")
    def chart(self, obj: Calibration) -> SafeString:
        sizes, measured, predicted = calibrations.predicted_vs_measured(obj)
        title = f"{obj}: fitted all-reduce time"
        groups = calibrations.point_groups(obj, sizes)  # one colour per regime
        with plots.figure(6.0, 5.0) as fig:
            ax = fig.add_subplot()
            draw_predicted_vs_measured(ax, measured, predicted, groups, title)
            svg = plots.to_svg(fig, title=title)
        # Our own figure: to_svg escapes the title, matplotlib escapes the text it draws. The
        # box gives the unsized SVG its width (the admin's read-only cell shrinks to fit).
        return format_html(
            '<div style="width: 36rem; max-width: 100%;">{}</div>',
            mark_safe(svg),  # nosec
        )

    @admin.display(description="raw")
    def raw_text(self, obj: Calibration) -> SafeString:
        """The measurement as given, its columns kept aligned."""
        return format_html(
            '<pre style="max-height: 24rem; overflow: auto; margin: 0;">{}</pre>', obj.raw or "—"
        )

    @admin.display(description="points")
    def points_table(self, obj: Calibration) -> SafeString:
        sizes, measured, predicted = calibrations.predicted_vs_measured(obj)
        return format_html(
            "<table><tr><th>size</th><th>bytes</th><th>measured (µs)</th>"
            "<th>predicted (µs)</th><th>error</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        calibrations.size_label(size),
                        f"{size:,}",
                        f"{m * 1e6:,.2f}",
                        f"{p * 1e6:,.2f}",
                        f"{(p - m) / m:+.1%}",
                    )
                    for size, m, p in zip(sizes, measured, predicted, strict=True)
                ),
            ),
        )


@admin.register(ClusterCalibration)
class ClusterCalibrationAdmin(CalibrationAdmin):
    list_display = ("cluster", *_COLUMNS)
    list_select_related = ("cluster__site", "created_by")
    search_fields = ("cluster__name", "cluster__slug", "origin")
    fields = ("cluster", *_EVIDENCE)
    readonly_fields = fields


@admin.register(LinkCalibration)
class LinkCalibrationAdmin(CalibrationAdmin):
    list_display = ("link", *_COLUMNS)
    list_select_related = ("link__site_a", "link__site_b", "created_by")
    search_fields = ("link__site_a__slug", "link__site_b__slug", "origin")
    fields = ("link", *_EVIDENCE)
    readonly_fields = fields
