"""Writes to the inventory, and the seam between ORM rows and the performance model.

`clusters/perfmodel/` never imports Django; this module turns inventory rows into model inputs
(and `clusters/acceptance.py` builds its node-group scenario from `accelerator_figures`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from common.exceptions import DomainError

from . import guards
from .calibrations import latest_cluster_figure, latest_link_figure
from .choices import NodeStatus
from .models import AcceleratorModel, Cluster, Node, Site, SiteLink
from .perfmodel.published import kernel_mfu
from .selectors import count_subquery

# The internal workload the operator would train on reclaimed capacity, unless told otherwise:
# a 1T-parameter dense model, 64M-token batches, TP 8 × PP 16, hierarchical sync, equal split.
DEFAULT_WORKLOAD: dict[str, object] = {
    "params": 1.0e12,
    "tokens_per_step": 64 * 2**20,
    "bytes_per_grad": 2,
    "tensor_parallel": 8,
    "pipeline_parallel": 16,
    "microbatches": 32,
    "pipeline_interleave": 2,
    "sync": "hierarchical",
    "diloco_inner_steps": 100,
    "diloco_quality_penalty": 0.05,
    "batch_split": "equal",
}
DEFAULT_ECONOMICS: dict[str, object] = {
    "reference_accelerator": "H100",
    "scarcity_multiplier": 1.0,
    "rent_per_month_usd": 0.0,
    "horizon_days": 90,
    "restart_cost_s": 300,
}
# Nodes that run jobs: degraded nodes still train, down and maintenance nodes do not.
RUNNING_STATUSES = (NodeStatus.ACTIVE, NodeStatus.DEGRADED)


@transaction.atomic
def node_set_status(
    *, node_ids: Iterable[int], status: str, now: dt.datetime | None = None, note: str = ""
) -> int:
    """Set the status of the given nodes; returns how many changed.

    Nodes already in `status` are left alone, so their `status_changed_at` keeps telling when
    they really changed.
    """
    if status not in NodeStatus.values:
        raise ValueError(f"unknown node status {status!r}")
    now = now or timezone.now()
    changes = {"status": status, "status_changed_at": now}
    if note:
        changes["note"] = note
    return Node.objects.filter(pk__in=list(node_ids)).exclude(status=status).update(**changes)


class NodeHeld(DomainError):
    code = "node_held"
    default_message = (
        "A node held by a lease cannot change cluster or be deleted, and its status changes "
        "only through an incident or a maintenance window."
    )


@transaction.atomic
def nodes_move(*, node_ids: Iterable[int], cluster: Cluster, now: dt.datetime | None = None) -> int:
    """Move nodes to another cluster; returns how many moved. Refused whole (`node_held`) if
    any is held by a lease now or later (`clusters.guards`): its lease names its cluster."""
    ids = sorted(set(node_ids))
    now = now or timezone.now()
    held = guards.held_node_ids(ids, now=now)
    if held:
        raise NodeHeld(extra={"nodes": sorted(held)})
    return Node.objects.filter(pk__in=ids).exclude(cluster=cluster).update(cluster=cluster)


def site_link_create(*, site_a: Site, site_b: Site, **fields: object) -> SiteLink:
    """Create the link between two different sites, stored in canonical (lower id first) order."""
    link = SiteLink(site_a=site_a, site_b=site_b, **fields)
    link.full_clean()
    link.save()
    return link


def accelerator_key(slug: str) -> str:
    """The name an inventory accelerator carries in a scenario (catalog style: `H100`)."""
    return slug.upper()


def accelerator_figures(acc: AcceleratorModel) -> dict[str, float]:
    """An inventory accelerator's figures as a scenario's `accelerators` entry. Its
    `reference_mfu` is end to end; the scenario's `mfu` is the kernel MFU it converts to
    (`perfmodel.published.kernel_mfu`: by name, else by generation; docs/model.md, "Compute")."""
    return {
        "peak_tflops": acc.peak_tflops,
        "mfu": kernel_mfu(accelerator_key(acc.slug), acc.reference_mfu, acc.generation),
        "hbm_gb": acc.hbm_gb,
        "scaleout_gbps": acc.scaleout_gbps,
        "jitter_cv": acc.jitter_cv,
        "mtbf_hours": acc.mtbf_hours,
        "price_per_gpu_hour_usd": float(acc.market_price_per_gpu_hour),
    }


def scenario_document(
    *,
    clusters: Iterable[Cluster] | None = None,
    leased_gpus: dict[int, int] | None = None,
    workload: dict[str, object] | None = None,
    economics: dict[str, object] | None = None,
    name: str = "",
) -> dict[str, object]:
    """A `landlord.scenario/1` document for inventory clusters (all clusters by default).

    Each cluster becomes a pool of its running GPUs (active and degraded nodes). Where
    `leased_gpus[cluster_id]` is given, the cluster is split into a leased pool of that many
    GPUs (`leased: true`, the capacity a reclaim would take back) and a free pool of the rest.
    Accelerator figures come from the inventory's catalog rows, links from `SiteLink` rows
    between the sites involved, each with its latest calibration's measured step latency and
    usable throughput (and each cluster's latest measured bus bandwidth) where one exists.
    Queries: two, whatever the number of clusters or calibrations.
    """
    # Per cluster, an index-only count on (cluster, status), not a join of every node: at 10×
    # the demo's fleet 38 ms instead of 207 ms.
    running = Node.objects.filter(status__in=RUNNING_STATUSES)
    queryset = Cluster.objects.select_related("site", "accelerator").annotate(
        running_nodes=count_subquery(running, "cluster"),
        calibrated_busbw_gbps=latest_cluster_figure("usable_gbps"),
    )
    if clusters is not None:
        queryset = queryset.filter(pk__in=[c.pk for c in clusters])
    rows = list(queryset.order_by("site__slug", "slug"))
    leased_gpus = leased_gpus or {}
    accelerators: dict[str, dict[str, float]] = {}
    pools: list[dict[str, object]] = []
    for cluster in rows:
        acc = cluster.accelerator
        key = accelerator_key(acc.slug)
        accelerators[key] = accelerator_figures(acc)
        # The latest measured bus bandwidth replaces the nominal fabric (docs/model.md).
        measured = cluster.calibrated_busbw_gbps
        fabric = min(
            cluster.fabric_gbps_per_gpu if measured is None else measured, acc.scaleout_gbps
        )
        running = cluster.running_nodes * cluster.gpus_per_node
        leased = min(leased_gpus.get(cluster.pk, 0), running)
        parts = [
            (leased, True, f"{cluster.slug} (leased)"),
            (running - leased, False, cluster.slug),
        ]
        for gpus, is_leased, label in parts:
            if gpus > 0:
                pools.append(
                    {
                        "name": label,
                        "site": cluster.site.slug,
                        "accelerator": key,
                        "gpus": gpus,
                        "fabric_gbps_per_gpu": fabric,
                        "leased": is_leased,
                    }
                )
    # Links only between sites that still have a pool: a campus whose every node is down or in
    # maintenance contributes no pool, and a link to it would name a site the scenario lacks.
    site_ids = {c.site_id for c in rows if c.running_nodes > 0}
    links = [
        {
            "a": link.site_a.slug,
            "b": link.site_b.slug,
            "bandwidth_gbps": link.bandwidth_gbps,
            "route_km": link.route_km,
            "efficiency": link.efficiency,
            "latency_us": link.equipment_latency_us,
            "window_bytes": link.window_bytes,
            "streams": link.streams,
            "rendezvous_rtts": link.rendezvous_rtts,
            "loss_rate": link.loss_rate,
            # The latest calibration's measured figures, when the link has one.
            "step_latency_us": link.calibrated_latency_us,
            "usable_gbps": link.calibrated_usable_gbps,
        }
        for link in SiteLink.objects.select_related("site_a", "site_b")
        .filter(site_a__in=site_ids, site_b__in=site_ids)
        .annotate(
            calibrated_latency_us=latest_link_figure("step_latency_us"),
            calibrated_usable_gbps=latest_link_figure("usable_gbps"),
        )
    ]
    return {
        "schema": "landlord.scenario/1",
        "name": name or "inventory",
        "workload": {**DEFAULT_WORKLOAD, **(workload or {})},
        "accelerators": accelerators,
        "pools": pools,
        "links": links,
        "economics": {**DEFAULT_ECONOMICS, **(economics or {})},
    }
