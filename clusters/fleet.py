"""The machines' own facts: incidents, maintenance windows and the node status they drive.

docs/rules/fleet.md. Everything here is about nodes, whoever holds them; what a tenant sees and
what a lease owes follow from holdings, in the apps above. Each write emits a domain event
(`FleetEvent`) in its transaction, so the apps above (webhooks, billing) act once it commits.

A node's status is derived, never typed, while the fleet has something to say about it:
an open incident of severity `down` → DOWN; a maintenance window in progress → MAINTENANCE;
an open incident of severity `degraded` → DEGRADED; otherwise ACTIVE (`derived_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q, QuerySet

from common import events
from common.exceptions import Conflict, DomainError

from .choices import (
    IncidentCategory,
    IncidentSource,
    IncidentStatus,
    MaintenanceScope,
    MaintenanceStatus,
    NodeStatus,
    Severity,
)
from .models import Incident, MaintenanceWindow, Node

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class FleetEvent:
    """Domain event kinds the fleet emits (`subject` is `incident` or `maintenance_window`)."""

    INCIDENT_OPENED = "incident.opened"
    INCIDENT_RESOLVED = "incident.resolved"
    MAINTENANCE_SCHEDULED = "maintenance.scheduled"
    MAINTENANCE_CHANGED = "maintenance.changed"


class IncidentClosed(Conflict):
    code = "incident_not_open"
    default_message = "The incident is already resolved."


class InvalidIncident(DomainError):
    code = "invalid_incident"
    default_message = "The incident is not valid."


# --- reads ----------------------------------------------------------------------------------


def window_nodes(window: MaintenanceWindow) -> QuerySet[Node]:
    """The nodes a window takes out of service, whatever its scope."""
    if window.site_id is not None:  # scope SITE (a database constraint ties them)
        return Node.objects.filter(cluster__site_id=window.site_id)
    if window.cluster_id is not None:  # scope CLUSTER
        return Node.objects.filter(cluster_id=window.cluster_id)
    return window.nodes.all()


def windows_of_nodes(node_ids: Iterable[int]) -> QuerySet[MaintenanceWindow]:
    """Windows whose scope includes any of the nodes (any status, any time)."""
    ids = list(node_ids)
    return MaintenanceWindow.objects.filter(
        Q(scope=MaintenanceScope.NODES, nodes__in=ids)
        | Q(scope=MaintenanceScope.CLUSTER, cluster__nodes__in=ids)
        | Q(scope=MaintenanceScope.SITE, site__clusters__nodes__in=ids)
    ).distinct()


def open_incident_node_ids(node_ids: Iterable[int] | None = None) -> set[int]:
    """Nodes with an open incident (never allocated anew)."""
    qs = Incident.objects.filter(status=IncidentStatus.OPEN)
    if node_ids is not None:
        qs = qs.filter(node_id__in=list(node_ids))
    return set(qs.values_list("node_id", flat=True))


def derived_status(*, down: bool, maintenance: bool, degraded: bool) -> str:
    """A node's status from what the fleet knows of it (module docstring)."""
    if down:
        return NodeStatus.DOWN
    if maintenance:
        return NodeStatus.MAINTENANCE
    if degraded:
        return NodeStatus.DEGRADED
    return NodeStatus.ACTIVE


# --- writes ---------------------------------------------------------------------------------


def node_refresh_status(*, node_ids: Iterable[int], now: dt.datetime) -> int:
    """Set each node's status from its open incidents and the windows in progress; returns how
    many changed. Four queries whatever the number of nodes."""
    ids = sorted(set(node_ids))
    if not ids:
        return 0
    open_incidents = Incident.objects.filter(node_id__in=ids, status=IncidentStatus.OPEN)
    down = set(open_incidents.filter(severity=Severity.DOWN).values_list("node_id", flat=True))
    degraded = set(
        open_incidents.filter(severity=Severity.DEGRADED).values_list("node_id", flat=True)
    )
    in_maintenance: set[int] = set()
    for window in windows_of_nodes(ids).filter(status=MaintenanceStatus.IN_PROGRESS):
        in_maintenance.update(window_nodes(window).filter(pk__in=ids).values_list("pk", flat=True))
    by_status: dict[str, list[int]] = {}
    for pk in ids:
        status = derived_status(
            down=pk in down, maintenance=pk in in_maintenance, degraded=pk in degraded
        )
        by_status.setdefault(status, []).append(pk)
    changed = 0
    for status, pks in by_status.items():
        changed += (
            Node.objects.filter(pk__in=pks)
            .exclude(status=status)
            .update(status=status, status_changed_at=now)
        )
    return changed


def incident_payload(incident: Incident) -> dict[str, Any]:
    """What consumers of an incident event get: enough to find who holds the node."""
    return {
        "incident": incident.pk,
        "node": incident.node_id,
        "hostname": incident.node.hostname,
        "category": incident.category,
        "severity": incident.severity,
        "source": incident.source,
        "status": incident.status,
        "opened_at": incident.opened_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
    }


@transaction.atomic
def incident_open(
    *,
    node: Node,
    category: str,
    source: str,
    now: dt.datetime,
    severity: str = Severity.DOWN,
    description: str = "",
    evidence: dict[str, Any] | None = None,
    reporter: str = "",
    actor: User | None = None,
) -> Incident:
    """Open an incident on a node at `now` (its report time): the node's status follows, it is
    no longer allocated anew, and `incident.opened` is emitted."""
    if category not in IncidentCategory.values:
        raise InvalidIncident(f"unknown category {category!r}", extra={"field": "category"})
    if source not in IncidentSource.values:
        raise InvalidIncident(f"unknown source {source!r}", extra={"field": "source"})
    if severity not in (Severity.DOWN, Severity.DEGRADED):
        raise InvalidIncident(f"severity must be down or degraded, not {severity!r}")
    incident = Incident.objects.create(
        node=node,
        category=category,
        severity=severity,
        source=source,
        opened_at=now,
        description=description,
        evidence=evidence or {},
        reporter=reporter,
        opened_by=actor,
    )
    node_refresh_status(node_ids=[node.pk], now=now)
    events.emit(
        FleetEvent.INCIDENT_OPENED,
        subject="incident",
        subject_id=incident.pk,
        payload=incident_payload(incident),
        occurred_at=now,
    )
    return incident


@transaction.atomic
def incident_resolve(
    *, incident: Incident, now: dt.datetime, resolution: str = "", actor: User | None = None
) -> Incident:
    """Resolve an open incident at `now`; the node's status follows; `incident.resolved` is
    emitted. Refused (`incident_not_open`) when it is resolved already, or before it opened."""
    locked = Incident.objects.select_for_update().select_related("node").get(pk=incident.pk)
    if locked.status != IncidentStatus.OPEN:
        raise IncidentClosed()
    if now < locked.opened_at:
        raise InvalidIncident(
            "An incident cannot be resolved before it was opened.",
            extra={"field": "resolved_at"},
        )
    locked.status = IncidentStatus.RESOLVED
    locked.resolved_at = now
    locked.resolution = resolution
    locked.resolved_by = actor
    locked.save(update_fields=["status", "resolved_at", "resolution", "resolved_by"])
    node_refresh_status(node_ids=[locked.node_id], now=now)
    events.emit(
        FleetEvent.INCIDENT_RESOLVED,
        subject="incident",
        subject_id=locked.pk,
        payload=incident_payload(locked),
        occurred_at=now,
    )
    return locked


# --- incident helpers for batches (health ingestion) ------------------------------------------


def incident_events(
    *, opened: Iterable[Incident], resolved: Iterable[Incident]
) -> list[events.Event]:
    """The domain events of incidents opened and resolved by one batch, to emit together
    (`events.emit_many`): `incident.opened` at each opening, `incident.resolved` at each
    resolution. The incidents carry their node (no query per incident)."""
    out = [
        events.Event(
            FleetEvent.INCIDENT_OPENED,
            subject="incident",
            subject_id=i.pk,
            payload=incident_payload(i) | {"status": IncidentStatus.OPEN, "resolved_at": None},
            occurred_at=i.opened_at,
        )
        for i in opened
    ]
    out += [
        events.Event(
            FleetEvent.INCIDENT_RESOLVED,
            subject="incident",
            subject_id=i.pk,
            payload=incident_payload(i),
            occurred_at=i.resolved_at or i.opened_at,
        )
        for i in resolved
    ]
    return out
