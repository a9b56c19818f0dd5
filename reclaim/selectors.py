"""Reads for reclaim decisions: candidate lines of a scope, their facts, decision lists.

Every function here runs a bounded number of queries whatever the number of lines.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Prefetch, QuerySet

from clusters.models import Site
from clusters.services import accelerator_key

# SIGNED: a lease whose capacity an operator notice can take back.
from leasing.choices import SIGNED, LineStatus
from leasing.models import Lease, LeaseLine, Notice

from .choices import ReclaimStatus
from .models import ReclaimDecision
from .planner import LineFacts

OPEN_DECISIONS = (ReclaimStatus.DRAFT, ReclaimStatus.SCORED)
SCOPE_KINDS = ("lease", "lines", "cluster", "site", "plan")


def reclaimable_lines() -> QuerySet[LeaseLine]:
    """Open lines of signed leases: what an operator notice could take back."""
    return LeaseLine.objects.filter(status=LineStatus.OPEN, lease__status__in=SIGNED)


def scope_lines(
    *,
    kind: str,
    lease_id: int | None = None,
    line_ids: Iterable[int] = (),
    cluster_id: int | None = None,
    site_slug: str | None = None,
) -> list[LeaseLine]:
    """The candidate lines of a scope: a whole lease, some lines, a cluster or a campus."""
    qs = reclaimable_lines()
    # No lease or cluster given matches nothing: neither column is ever null.
    if kind == "lease":
        qs = qs.filter(lease_id=lease_id) if lease_id is not None else qs.none()
    elif kind in ("lines", "plan"):
        qs = qs.filter(pk__in=list(line_ids))
    elif kind == "cluster":
        qs = qs.filter(cluster_id=cluster_id) if cluster_id is not None else qs.none()
    elif kind == "site":
        qs = qs.filter(cluster__site__slug=site_slug)
    else:
        raise ValueError(f"unknown scope kind {kind!r}")
    return list(qs.order_by("lease_id", "pk"))


def line_facts(lines: Iterable[LeaseLine | int]) -> list[LineFacts]:
    """Facts of the given lines (ids or rows), in line order. Two queries."""
    ids = sorted({x if isinstance(x, int) else x.pk for x in lines})
    rows = list(
        LeaseLine.objects.filter(pk__in=ids)
        .select_related("lease__tenant", "cluster__site", "cluster__accelerator")
        .order_by("pk")
    )
    lease_ids = {r.lease_id for r in rows}
    open_by_lease: dict[int, set[int]] = {}
    for lease_id, line_id in LeaseLine.objects.filter(
        lease_id__in=lease_ids, status=LineStatus.OPEN
    ).values_list("lease_id", "pk"):
        open_by_lease.setdefault(lease_id, set()).add(line_id)
    return [facts_of(r, frozenset(open_by_lease.get(r.lease_id, ()))) for r in rows]


def facts_of(line: LeaseLine, lease_open_line_ids: frozenset[int] = frozenset()) -> LineFacts:
    lease = line.lease
    return LineFacts(
        line_id=line.pk,
        lease_id=lease.pk,
        lease_number=lease.number,
        tenant=lease.tenant.name,
        cluster_id=line.cluster_id,
        cluster_slug=line.cluster.slug,
        site_slug=line.cluster.site.slug,
        accelerator=accelerator_key(line.cluster.accelerator.slug),
        gpus=line.node_count * line.cluster.gpus_per_node,
        monthly_rate=line.monthly_rate,
        tz=lease.contract_timezone,
        commencement=lease.commencement,
        term_end=lease.term_end,
        line_end=line.end,
        notice_days=lease.notice_days,
        reclaimable=line.status == LineStatus.OPEN and lease.status in SIGNED,
        label=line.label,
        lease_open_line_ids=lease_open_line_ids,
    )


def site_names(slugs: Iterable[str]) -> dict[str, str]:
    """Campus names by slug (one query), to name the links of a scenario."""
    return dict(Site.objects.filter(slug__in=set(slugs)).values_list("slug", "name"))


def decision_list() -> QuerySet[ReclaimDecision]:
    """Decisions for the workbench list, newest first, with their line count (one query)."""
    return ReclaimDecision.objects.annotate(n_lines=Count("lines", distinct=True)).order_by(
        "-created_at", "-pk"
    )


def decision_get(pk: int) -> ReclaimDecision:
    """One decision with its lines (lease, tenant, cluster, site) and notices prefetched."""
    return ReclaimDecision.objects.prefetch_related(
        Prefetch(
            "lines",
            queryset=LeaseLine.objects.select_related(
                "lease__tenant", "cluster__site", "cluster__accelerator"
            ).order_by("lease_id", "pk"),
        ),
        Prefetch("notices", queryset=Notice.objects.select_related("lease__tenant")),
    ).get(pk=pk)


def open_decision_ids() -> list[int]:
    """Decisions the nightly job re-scores (draft and scored)."""
    return list(
        ReclaimDecision.objects.filter(status__in=OPEN_DECISIONS)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def signed_leases() -> QuerySet[Lease]:
    return Lease.objects.filter(status__in=SIGNED).select_related("tenant").order_by("number")
