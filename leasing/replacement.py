"""Replacement of failed nodes from healthy spares (docs/rules/fleet.md, "Replacement").

The operator swaps a node of a running allocation for a spare: the failed node's allocation ends
at the swap instant and the spare's begins at that same instant and runs to the failed
allocation's old end, not yet accepted (the spare goes through acceptance like any node).

Which spares qualify is the line's substitution policy, measured from the line's cluster:
`same_cluster`; `same_campus` (a cluster of the same site with the same accelerator model);
`same_model` (the same accelerator model, any site). A spare is healthy (status active, no
open incident) and free at every instant of `[swap, end)` by the rule every capacity figure
shares (`selectors.held_during`, holdover and draining included).

Lock order (docs/architecture.md, "Lock order"): the lease row first (`_lock_lease`), then the
cluster rows of every cluster the spare search reads, ascending (`_lock_clusters`, the
allocation mutex), and only then the reads: a swap decided on a stale read is never applied.
On PostgreSQL the exclusion constraint still rejects an overlap that slips past.

`nodes_replace` swaps several nodes, of one lease or of several, under one set of locks (the
leases in ascending id, then the clusters): a rack at a time; `node_replace` is the one-node
form. Both refuse with a coded error and write nothing when a
rule forbids the swap; when no spare fits, the error's `extra` says why, pool by pool, and which
wider policy would find one (`spare_shortfall`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from clusters.choices import IncidentStatus, NodeStatus
from clusters.fleet import incident_open
from clusters.models import Cluster, Incident, Node
from common import events
from common.clock import resolve_now

from .allocation import _is_exclusion_violation, _lock_clusters
from .choices import SIGNED, LineStatus, Party, SubstitutionPolicy
from .exceptions import CapacityUnavailable, Conflict, InvalidInput
from .models import Allocation, Lease, LeaseEvent, LeaseLine, Replacement
from .selectors import held_during
from .transitions import _iso, _lock_lease

if TYPE_CHECKING:
    from django.contrib.auth.models import User

NODE_REPLACED = "node.replaced"
# A batch larger than this is refused: one swap is an operator's act on a rack, not a fleet.
MAX_BATCH = 1_000


class ReplacementNotAllowed(Conflict):
    """The allocation is not running at the swap instant, or its lease or line is not open."""

    code = "replacement_not_allowed"
    default_message = "This allocation cannot be replaced now."


class SpareNotAllowed(Conflict):
    """The chosen spare is outside the line's policy, unhealthy or held."""

    code = "spare_not_allowed"
    default_message = "This node cannot be the spare."


class NoSpareAvailable(Conflict):
    """No healthy free node fits the line's substitution policy; `extra` says why and what
    would."""

    code = "no_spare_available"
    default_message = "No healthy free spare fits the line's substitution policy."


# --- reads: the pools a policy allows, and why they are empty ------------------------------------


def pool_clusters(cluster: Cluster, policy: str) -> QuerySet[Cluster]:
    """The clusters whose nodes may replace a node of a line on `cluster` under `policy`."""
    if policy == SubstitutionPolicy.SAME_CLUSTER:
        return Cluster.objects.filter(pk=cluster.pk)
    if policy == SubstitutionPolicy.SAME_CAMPUS:
        return Cluster.objects.filter(
            site_id=cluster.site_id, accelerator_id=cluster.accelerator_id
        )
    if policy == SubstitutionPolicy.SAME_MODEL:
        return Cluster.objects.filter(accelerator_id=cluster.accelerator_id)
    raise InvalidInput(f"unknown substitution policy {policy!r}", extra={"policy": policy})


def _open_incident() -> Exists:
    return Exists(Incident.objects.filter(node=OuterRef("pk"), status=IncidentStatus.OPEN))


def _busy(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Exists:
    return Exists(
        Allocation.objects.filter(node=OuterRef("pk")).filter(held_during(start, end, now=now))
    )


def spare_candidates(
    cluster_ids: Iterable[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    now: dt.datetime,
    prefer_cluster: int | None = None,
) -> QuerySet[Node]:
    """Healthy nodes of the clusters free over `[start, end)`: status active, no open incident,
    held by no allocation at any instant of the period. Nodes of `prefer_cluster` first, then
    by cluster and pk. One query; hold the cluster locks if the answer is used to allocate."""
    order: list[Any] = ["cluster_id", "pk"]
    qs = (
        Node.objects.filter(cluster_id__in=list(cluster_ids), status=NodeStatus.ACTIVE)
        .filter(~_open_incident())
        .filter(~_busy(start, end, now))
    )
    if prefer_cluster is not None:
        qs = qs.annotate(
            _away=Case(
                When(cluster_id=prefer_cluster, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        order.insert(0, "_away")
    return qs.order_by(*order)


def _pool_counts(
    cluster_ids: Iterable[int], start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> list[dict[str, Any]]:
    """Per cluster: nodes, held over the period, with an open incident, by status, free."""
    ids = list(cluster_ids)
    held = _busy(start, end, now)
    incident = _open_incident()
    rows = (
        Node.objects.filter(cluster_id__in=ids)
        .annotate(_held=held, _incident=incident)
        .values("cluster_id")
        .annotate(
            nodes=Count("pk"),
            held=Count("pk", filter=Q(_held=True)),
            in_incident=Count("pk", filter=Q(_incident=True)),
            down=Count("pk", filter=Q(status=NodeStatus.DOWN)),
            maintenance=Count("pk", filter=Q(status=NodeStatus.MAINTENANCE)),
            degraded=Count("pk", filter=Q(status=NodeStatus.DEGRADED)),
            free=Count(
                "pk",
                filter=Q(status=NodeStatus.ACTIVE, _held=False, _incident=False),
            ),
        )
        .order_by("cluster_id")
    )
    by_id: dict[int, dict[str, Any]] = {r["cluster_id"]: dict(r) for r in rows}
    clusters = Cluster.objects.filter(pk__in=ids).select_related("site").order_by("pk")
    return [
        {
            "cluster": c.pk,
            "name": str(c),
            "site": c.site.name,
            **{
                k: by_id.get(c.pk, {}).get(k, 0)
                for k in ("nodes", "held", "in_incident", "down", "maintenance", "degraded", "free")
            },
        }
        for c in clusters
    ]


_WIDER = {
    SubstitutionPolicy.SAME_CLUSTER: (
        SubstitutionPolicy.SAME_CAMPUS,
        SubstitutionPolicy.SAME_MODEL,
    ),
    SubstitutionPolicy.SAME_CAMPUS: (SubstitutionPolicy.SAME_MODEL,),
    SubstitutionPolicy.SAME_MODEL: (),
}


def spare_shortfall(
    line: LeaseLine, start: dt.datetime, end: dt.datetime, *, now: dt.datetime, needed: int = 1
) -> dict[str, Any]:
    """Why no spare fits the line over `[start, end)`, and what would.

    `pools`: each cluster the policy allows, with its nodes, how many are held over the period,
    in an open incident, down, in maintenance, degraded, and free. `would_fit`: each wider
    policy, with the clusters it would add that have free healthy nodes (another cluster of the
    campus, another campus of the model): the policy change that would find a spare."""
    policy = line.substitution_policy
    allowed = set(pool_clusters(line.cluster, policy).values_list("pk", flat=True))
    pools = _pool_counts(allowed, start, end, now)
    would_fit = []
    seen = set(allowed)
    for wider in _WIDER.get(SubstitutionPolicy(policy), ()):
        added = set(pool_clusters(line.cluster, wider).values_list("pk", flat=True)) - seen
        seen |= added
        free = [p for p in _pool_counts(added, start, end, now) if p["free"] > 0]
        if free:
            would_fit.append(
                {
                    "policy": str(wider),
                    "free": sum(p["free"] for p in free),
                    "clusters": [
                        {"cluster": p["cluster"], "name": p["name"], "free": p["free"]}
                        for p in free
                    ],
                }
            )
    return {
        "line": line.pk,
        "policy": str(policy),
        "needed": needed,
        "available": sum(p["free"] for p in pools),
        "starts_at": _iso(start),
        "ends_at": _iso(end),
        "pools": pools,
        "would_fit": would_fit,
    }


@dataclass(frozen=True)
class Proposal:
    """What a swap would do, read without locks (the admin's confirmation page)."""

    allocation: Allocation
    spare: Node | None
    incident: Incident | None
    shortfall: dict[str, Any] | None


def replacement_propose(
    *, allocation: Allocation, now: dt.datetime, exclude: Iterable[int] = ()
) -> Proposal:
    """The spare `node_replace` would pick now (leaving out the nodes `exclude`: spares already
    proposed for other rows), or why there is none. Reads only: the service decides again under
    its locks."""
    now = resolve_now(now)
    line = allocation.line
    pool = pool_clusters(line.cluster, line.substitution_policy).values_list("pk", flat=True)
    spare = (
        spare_candidates(
            pool, now, allocation.ends_at, now=now, prefer_cluster=allocation.node.cluster_id
        )
        .exclude(pk__in=[allocation.node_id, *exclude])
        .select_related("cluster__site")
        .first()
    )
    incident = (
        Incident.objects.filter(node_id=allocation.node_id, status=IncidentStatus.OPEN)
        .order_by("-opened_at", "-pk")
        .first()
    )
    shortfall = None if spare else spare_shortfall(line, now, allocation.ends_at, now=now, needed=1)
    return Proposal(allocation=allocation, spare=spare, incident=incident, shortfall=shortfall)


# --- writes ---------------------------------------------------------------------------------------


def replacement_payload(replacement: Replacement, lease: Lease) -> dict[str, Any]:
    """The `node.replaced` domain event's payload (the webhook contract)."""
    failed = replacement.failed_allocation
    spare = replacement.spare_allocation
    return {
        "tenant": lease.tenant_id,
        "lease": lease.pk,
        "lease_number": lease.number,
        "line": replacement.line_id,
        "failed_node": failed.node_id,
        "failed_hostname": failed.node.hostname,
        "spare_node": spare.node_id,
        "spare_hostname": spare.node.hostname,
        "at": replacement.at.isoformat(),
        "replacement": replacement.pk,
        "incident": replacement.incident_id,
    }


def _current(allocation: Allocation, lease: Lease, now: dt.datetime) -> None:
    if lease.status not in SIGNED:
        raise ReplacementNotAllowed(
            f"Lease {lease.number} is {lease.status}: only a signed lease's nodes are replaced.",
            extra={"lease": lease.pk, "status": lease.status},
        )
    if allocation.line.status != LineStatus.OPEN:
        raise ReplacementNotAllowed("The line is not open.", extra={"line": allocation.line_id})
    if not allocation.starts_at < now < allocation.ends_at:
        raise ReplacementNotAllowed(
            f"Node {allocation.node.hostname}'s allocation does not run at the swap instant "
            f"(it covers {_iso(allocation.starts_at)} to {_iso(allocation.ends_at)}).",
            extra={
                "allocation": allocation.pk,
                "node": allocation.node_id,
                "at": _iso(now),
                "starts_at": _iso(allocation.starts_at),
                "ends_at": _iso(allocation.ends_at),
            },
        )


def _check_spare(spare: Node, allocation: Allocation, pool: set[int], now: dt.datetime) -> None:
    line = allocation.line
    base = {"spare": spare.pk, "hostname": spare.hostname, "policy": line.substitution_policy}
    if spare.pk == allocation.node_id:
        raise SpareNotAllowed(
            "A node cannot replace itself.", extra={**base, "reason": "same_node"}
        )
    if spare.cluster_id not in pool:
        raise SpareNotAllowed(
            f"{spare.hostname} is outside the line's substitution policy "
            f"({line.get_substitution_policy_display()}).",
            extra={**base, "reason": "policy"},
        )
    if spare.status != NodeStatus.ACTIVE:
        raise SpareNotAllowed(
            f"{spare.hostname} is {spare.status}.",
            extra={**base, "reason": "not_healthy", "status": spare.status},
        )
    if Incident.objects.filter(node=spare, status=IncidentStatus.OPEN).exists():
        raise SpareNotAllowed(
            f"{spare.hostname} has an open incident.", extra={**base, "reason": "incident"}
        )
    if (
        Allocation.objects.filter(node=spare)
        .filter(held_during(now, allocation.ends_at, now=now))
        .exists()
    ):
        raise SpareNotAllowed(
            f"{spare.hostname} is held during {_iso(now)} to {_iso(allocation.ends_at)}.",
            extra={**base, "reason": "held"},
        )


def _pick_spares(
    batch: Sequence[Allocation],
    chosen: dict[int, Node],
    pools: Mapping[int, frozenset[int]],
    leases: Mapping[int, Lease],
    now: dt.datetime,
) -> None:
    """Pick a spare for each allocation of `batch` not in `chosen` (filled in place), or refuse
    with the shortfall. Allocations sharing a pool, an end and a cluster are served by one
    query, in batch order. Run holding the cluster locks of every pool."""
    groups: dict[tuple[frozenset[int], dt.datetime, int], list[Allocation]] = {}
    for allocation in batch:
        if allocation.pk not in chosen:
            key = (pools[allocation.line_id], allocation.ends_at, allocation.node.cluster_id)
            groups.setdefault(key, []).append(allocation)
    for (pool, end, prefer), wanting in groups.items():
        # The failed nodes are held by their own allocations over the period: the query leaves
        # them out already. Spares chosen for earlier groups are not held yet: left out here.
        taken = {n.pk for n in chosen.values() if n.cluster_id in pool}
        found = list(
            spare_candidates(pool, now, end, now=now, prefer_cluster=prefer).exclude(pk__in=taken)[
                : len(wanting)
            ]
        )
        if len(found) < len(wanting):
            line = wanting[0].line
            lease = leases[line.lease_id]
            raise NoSpareAvailable(
                f"{len(found)} of the {len(wanting)} spares needed (line {line.pk} of lease "
                f"{lease.number}) fit the policy ({line.get_substitution_policy_display()}).",
                extra=spare_shortfall(line, now, end, now=now, needed=len(wanting)),
            )
        for allocation, spare in zip(wanting, found, strict=True):
            chosen[allocation.pk] = spare


def _lock_leases(allocation_ids: Sequence[int], lease: Lease | int | None) -> dict[int, Lease]:
    """Lock the leases of the allocations (or `lease` alone) in ascending id and return them
    freshly read: the first step of the lock order."""
    if lease is not None:
        locked = _lock_lease(lease)
        return {locked.pk: locked}
    of = Allocation.objects.filter(pk__in=allocation_ids).values("line__lease_id")
    if connection.vendor == "sqlite":
        Lease.objects.filter(pk__in=of).update(id=F("id"))
    return {
        row.pk: row for row in Lease.objects.filter(pk__in=of).order_by("pk").select_for_update()
    }


@transaction.atomic
def nodes_replace(
    *,
    allocations: Sequence[Allocation],
    now: dt.datetime,
    lease: Lease | int | None = None,
    actor: User | None = None,
    reason: str = "",
    spares: Mapping[int, Node] | None = None,
    incidents: Mapping[int, Incident | None] | None = None,
) -> list[Replacement]:
    """Replace the nodes of several allocations at `now`, all or nothing, under one lock set.

    `lease` (the lease or its id), if given, is the one lease all allocations must belong to;
    otherwise they may span leases (a rack shared by tenants), all locked in ascending id.
    `spares` maps an allocation id to the chosen spare (otherwise one is picked: the failed
    node's own cluster first); `incidents` maps an allocation id to the incident the swap
    answers (otherwise the failed node's latest open incident, if any). Locks: the leases, then
    every cluster the line policies open to the search. Writes per swap: the failed allocation
    ends at `now`, the spare's allocation runs `[now, old end)` pending acceptance, a
    `Replacement` row and a `node.replaced` `LeaseEvent`; a `node.replaced` domain event per
    swap is emitted in the transaction.
    """
    now = resolve_now(now)
    ids = [a.pk for a in allocations]
    if not ids:
        raise InvalidInput("Nothing to replace.", extra={"field": "allocations"})
    if len(set(ids)) != len(ids):
        raise InvalidInput("An allocation is listed twice.", extra={"field": "allocations"})
    if len(ids) > MAX_BATCH:
        raise InvalidInput(
            f"At most {MAX_BATCH} nodes per replacement.", extra={"field": "allocations"}
        )
    spares = dict(spares or {})
    incidents = dict(incidents or {})
    leases = _lock_leases(ids, lease)
    # Re-read after the lease locks: the rows as they are now, not as the caller saw them.
    fresh = {
        a.pk: a
        for a in Allocation.objects.filter(pk__in=ids).select_related(
            "line__cluster", "node__cluster"
        )
    }
    missing = [pk for pk in ids if pk not in fresh or fresh[pk].line.lease_id not in leases]
    if missing:
        named = ", ".join(sorted(x.number for x in leases.values()))
        raise ReplacementNotAllowed(
            f"Not allocations of lease {named}.", extra={"allocations": missing}
        )
    batch = [fresh[pk] for pk in ids]
    pools: dict[int, frozenset[int]] = {}
    for allocation in batch:
        _current(allocation, leases[allocation.line.lease_id], now)
        line = allocation.line
        if line.pk not in pools:
            pools[line.pk] = frozenset(
                {line.cluster_id}
                if line.substitution_policy == SubstitutionPolicy.SAME_CLUSTER
                else pool_clusters(line.cluster, line.substitution_policy)
                .order_by()
                .values_list("pk", flat=True)
            )
    _lock_clusters(set().union(*pools.values()))

    failed_nodes = {a.node_id for a in batch}
    chosen: dict[int, Node] = {}
    for allocation in batch:
        spare = spares.get(allocation.pk)
        if spare is None:
            continue
        spare = Node.objects.get(pk=spare.pk)  # re-read under the cluster lock
        others = failed_nodes - {allocation.node_id}
        if spare.pk in {n.pk for n in chosen.values()} or spare.pk in others:
            raise SpareNotAllowed(
                f"{spare.hostname} is chosen twice or is itself being replaced.",
                extra={"spare": spare.pk, "hostname": spare.hostname, "reason": "duplicate"},
            )
        _check_spare(spare, allocation, set(pools[allocation.line_id]), now)
        chosen[allocation.pk] = spare

    _pick_spares(batch, chosen, pools, leases, now)

    open_incidents: dict[int, Incident] = {}
    for found_incident in Incident.objects.filter(
        node_id__in=failed_nodes, status=IncidentStatus.OPEN
    ).order_by("opened_at", "pk"):
        open_incidents[found_incident.node_id] = found_incident  # the latest wins
    answered: dict[int, Incident | None] = {}
    for allocation in batch:
        answer = incidents.get(allocation.pk) or open_incidents.get(allocation.node_id)
        if answer is not None and answer.node_id != allocation.node_id:
            raise InvalidInput(
                f"Incident {answer.pk} is not about {allocation.node.hostname}.",
                extra={"field": "incident", "incident": answer.pk},
            )
        answered[allocation.pk] = answer

    # The writes: shorten, then insert (the constraint sees the end before the new start).
    Allocation.objects.filter(pk__in=ids).update(ends_at=now)
    new_rows = [
        Allocation(line_id=a.line_id, node=chosen[a.pk], starts_at=now, ends_at=a.ends_at)
        for a in batch
    ]
    try:
        # No savepoint of its own: a violation aborts this whole (atomic) service anyway.
        Allocation.objects.bulk_create(new_rows)
    except IntegrityError as exc:
        if _is_exclusion_violation(exc):
            raise CapacityUnavailable(
                "A spare was taken by another allocation meanwhile.",
                extra={"leases": sorted(leases)},
            ) from exc
        raise
    replacements = Replacement.objects.bulk_create(
        Replacement(
            line_id=a.line_id,
            incident=answered[a.pk],
            failed_allocation=a,
            spare_allocation=spare_row,
            at=now,
            actor=actor,
            reason=reason[:500],
        )
        for a, spare_row in zip(batch, new_rows, strict=True)
    )
    for a in batch:
        a.ends_at = now
    payloads = [
        replacement_payload(r, leases[r.failed_allocation.line.lease_id]) for r in replacements
    ]
    LeaseEvent.objects.bulk_create(
        LeaseEvent(
            lease_id=payload["lease"],
            kind=NODE_REPLACED,
            actor_party=Party.OPERATOR,
            actor=actor,
            at=now,
            reason=reason[:500],
            data=payload,
        )
        for payload in payloads
    )
    events.emit_many(
        events.Event(NODE_REPLACED, "replacement", r.pk, payload, now)
        for r, payload in zip(replacements, payloads, strict=True)
    )
    return replacements


def node_replace(
    *,
    now: dt.datetime,
    allocation: Allocation | None = None,
    line: LeaseLine | None = None,
    node: Node | None = None,
    incident: Incident | None = None,
    spare: Node | None = None,
    actor: User | None = None,
    reason: str = "",
) -> Replacement:
    """Replace one failed node at `now`: given its `allocation`, or its `line` and `node` (the
    allocation of that node on that line running at `now`). `spare=None` picks one by the
    line's policy. See `nodes_replace` for the rules and what is written."""
    now = resolve_now(now)
    if allocation is None:
        if line is None or node is None:
            raise InvalidInput(
                "Give the allocation, or the line and the failed node.",
                extra={"field": "allocation"},
            )
        allocation = (
            Allocation.objects.filter(line=line, node=node, starts_at__lt=now, ends_at__gt=now)
            .select_related("line__lease")
            .first()
        )
        if allocation is None:
            raise ReplacementNotAllowed(
                f"{node.hostname} has no allocation on line {line.pk} running at {_iso(now)}.",
                extra={"line": line.pk, "node": node.pk, "at": _iso(now)},
            )
    (replacement,) = nodes_replace(
        lease=allocation.line.lease_id,
        allocations=[allocation],
        now=now,
        actor=actor,
        reason=reason,
        spares={allocation.pk: spare} if spare is not None else None,
        incidents={allocation.pk: incident} if incident is not None else None,
    )
    return replacement


# --- demo -----------------------------------------------------------------------------------------

DEMO_REASON = "demo: GPU fell off the bus (Xid 79); swapped for a spare"
DEMO_LEASES = ("demo:helios-campus1", "demo:northwind-campus1-term2", "demo:helios-campus2-notice")


def seed_demo_replacement(*, now: dt.datetime) -> dict[str, int]:
    """The demo's completed replacement: a node of a running demo lease failed three days ago
    (an open incident from monitoring) and was swapped for a spare two days ago; the spare
    awaits acceptance. Idempotent (found again by its reason). Returns rows created."""
    if Replacement.objects.filter(reason=DEMO_REASON).exists():
        return {"replacements": 0}
    swap_at = now - dt.timedelta(days=2)
    for reference in DEMO_LEASES:
        running = (
            Allocation.objects.filter(
                line__lease__reference=reference,
                starts_at__lt=swap_at,
                ends_at__gt=swap_at,
                node__status=NodeStatus.ACTIVE,
            )
            .select_related("line__cluster", "node")
            .order_by("node__hostname")
            .first()
        )
        if running is None:
            continue
        if replacement_propose(allocation=running, now=swap_at).spare is None:
            continue
        with transaction.atomic():
            incident = incident_open(
                node=running.node,
                category="gpu",
                source="monitoring",
                now=swap_at - dt.timedelta(days=1),
                description="Xid 79: GPU has fallen off the bus; node drained.",
                evidence={"xid": 79, "gpu": 3},
                reporter="dcgm-exporter",
            )
            node_replace(allocation=running, incident=incident, now=swap_at, reason=DEMO_REASON)
        return {"replacements": 1}
    return {"replacements": 0}
