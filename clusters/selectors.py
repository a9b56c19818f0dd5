"""Reads of the inventory with the figures operators want at a glance.

Every figure is computed by the database in the same query as the rows (annotations), so a list
of sites, models or clusters costs a constant number of queries however large the fleet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Count, F, FloatField, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from .models import AcceleratorModel, Cluster, Node, Site

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class SiteFigures(TypedDict):
    """The figures `site_list` annotates each site with."""

    gpu_total: int
    node_total: int
    peak_pflops: float
    cluster_total: int


class AcceleratorFigures(TypedDict):
    """The figure `accelerator_list` annotates each catalog entry with."""

    gpu_total: int


def _node_sum(filter_field: str, value_expr) -> Subquery:
    """Sum `value_expr` over the nodes whose `filter_field` is the outer row."""
    rows = (
        Node.objects.filter(**{filter_field: OuterRef("pk")})
        .order_by()
        .values(filter_field)
        .annotate(total=Sum(value_expr))
        .values("total")
    )
    return Subquery(rows)


def count_subquery(rows: QuerySet[Any], group: str) -> Coalesce:
    """How many of `rows` have the outer row as their `group`, as a subquery (0 when none):
    no join and no GROUP BY in the outer query, and an index-only count where `group` (and
    the rows' filter) is indexed."""
    counted = (
        rows.filter(**{group: OuterRef("pk")})
        .order_by()
        .values(group)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def cluster_list() -> QuerySet[Cluster]:
    """Clusters with `node_total`, `gpu_total` and `peak_pflops` (peak × GPUs / 1000)."""
    return (
        Cluster.objects.select_related("site", "accelerator")
        .annotate(
            node_total=count_subquery(Node.objects.all(), "cluster"),
        )
        .annotate(
            gpu_total=F("node_total") * F("gpus_per_node"),
            peak_pflops=F("node_total")
            * F("gpus_per_node")
            * F("accelerator__peak_tflops")
            / 1000.0,
        )
    )


def site_list() -> QuerySet[WithAnnotations[Site, SiteFigures]]:
    """Sites with `gpu_total`, `node_total`, `cluster_total` and `peak_pflops`."""
    return Site.objects.annotate(
        gpu_total=Coalesce(
            _node_sum("cluster__site", "cluster__gpus_per_node"), 0, output_field=IntegerField()
        ),
        node_total=Coalesce(
            Subquery(
                Node.objects.filter(cluster__site=OuterRef("pk"))
                .order_by()
                .values("cluster__site")
                .annotate(n=Count("pk"))
                .values("n"),
                output_field=IntegerField(),
            ),
            0,
        ),
        peak_pflops=Coalesce(
            _node_sum(
                "cluster__site",
                F("cluster__gpus_per_node") * F("cluster__accelerator__peak_tflops"),
            ),
            0.0,
            output_field=FloatField(),
        )
        / 1000.0,
        # A subquery, not an aggregate over a join: no GROUP BY, so the admin's counts of the
        # list leave every figure out (Django strips unused annotations from a count).
        cluster_total=count_subquery(Cluster.objects.all(), "site"),
    )


def accelerator_list() -> QuerySet[WithAnnotations[AcceleratorModel, AcceleratorFigures]]:
    """Catalog entries with `gpu_total` deployed across the fleet."""
    return AcceleratorModel.objects.annotate(
        gpu_total=Coalesce(
            _node_sum("cluster__accelerator", "cluster__gpus_per_node"),
            0,
            output_field=IntegerField(),
        )
    )


def capacity_by_site_and_model() -> list[dict[str, object]]:
    """One row per (site, accelerator model): nodes, GPUs and peak PFLOP/s, in one query."""
    rows = (
        Node.objects.order_by()
        .values(
            "cluster__site__name",
            "cluster__site__slug",
            "cluster__accelerator__name",
            "cluster__accelerator__slug",
        )
        .annotate(
            nodes=Count("pk"),
            gpus=Sum("cluster__gpus_per_node"),
            peak_tflops=Sum(F("cluster__gpus_per_node") * F("cluster__accelerator__peak_tflops")),
        )
        .order_by("cluster__site__name", "cluster__accelerator__name")
    )
    return [
        {
            "site": r["cluster__site__name"],
            "site_slug": r["cluster__site__slug"],
            "accelerator": r["cluster__accelerator__name"],
            "accelerator_slug": r["cluster__accelerator__slug"],
            "nodes": r["nodes"],
            "gpus": r["gpus"],
            "peak_pflops": (r["peak_tflops"] or 0.0) / 1000.0,
        }
        for r in rows
    ]


def node_status_counts(*, cluster: Cluster) -> dict[str, int]:
    """Nodes of `cluster` per status, in one query."""
    rows = (
        Node.objects.filter(cluster=cluster)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by("status")
    )
    return dict(rows)
