"""The machines' own facts: incidents, maintenance windows and the node status they drive.

docs/rules/fleet.md. Everything here is about nodes, whoever holds them; what a tenant sees and
what a lease owes follow from holdings, in the apps above. Each write emits a domain event
(`FleetEvent`) in its transaction, so the apps above (webhooks, billing) act once it commits.

A node's status is derived, never typed, while the fleet has something to say about it:
an open incident of severity `down` → DOWN; a maintenance window in progress → MAINTENANCE;
an open incident of severity `degraded` → DEGRADED; otherwise ACTIVE (`node_refresh_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from common import events
from common.db import lock_row
from common.exceptions import Conflict, DomainError

from .choices import (
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
from .models import Cluster, Incident, MaintenanceWindow, Node

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
    """Windows whose scope includes any of the nodes (any status, any time).

    By subqueries on the nodes' own rows (their windows, cluster and campus), each window once:
    joining every node of a campus or cluster to its windows and then removing duplicates
    costs a scan of the fleet."""
    ids = list(node_ids)
    nodes = Node.objects.filter(pk__in=ids)
    by_node = MaintenanceWindow.nodes.through.objects.filter(node_id__in=ids)
    return MaintenanceWindow.objects.filter(
        Q(scope=MaintenanceScope.NODES, pk__in=by_node.values("maintenancewindow_id"))
        | Q(scope=MaintenanceScope.CLUSTER, cluster_id__in=nodes.values("cluster_id"))
        | Q(scope=MaintenanceScope.SITE, site_id__in=nodes.values("cluster__site_id"))
    )


def open_incident_node_ids(node_ids: Iterable[int] | None = None) -> set[int]:
    """Nodes with an open incident (never allocated anew)."""
    qs = Incident.objects.filter(status=IncidentStatus.OPEN)
    if node_ids is not None:
        qs = qs.filter(node_id__in=list(node_ids))
    return set(qs.values_list("node_id", flat=True))


# --- writes ---------------------------------------------------------------------------------

# A node's status from its open incidents and the windows in progress over it (by node, cluster
# or campus), in the order of the module docstring, written where it differs. Table names are
# the models'; every value is a parameter. PostgreSQL and SQLite >= 3.33 (UPDATE ... FROM).
REFRESH_SQL = """
UPDATE {node} SET status = derived.status, status_changed_at = %(now)s
FROM (
    SELECT n.id, CASE
        WHEN EXISTS (
            SELECT 1 FROM {incident} i
            WHERE i.node_id = n.id AND i.status = %(open)s AND i.severity = %(down)s
        ) THEN %(status_down)s
        WHEN EXISTS (
            SELECT 1 FROM {window} w
            WHERE w.status = %(in_progress)s AND (
                (w.scope = %(scope_nodes)s AND w.id IN (
                    SELECT wn.maintenancewindow_id FROM {window_nodes} wn WHERE wn.node_id = n.id
                ))
                OR (w.scope = %(scope_cluster)s AND w.cluster_id = n.cluster_id)
                OR (w.scope = %(scope_site)s AND w.site_id = (
                    SELECT c.site_id FROM {cluster} c WHERE c.id = n.cluster_id
                ))
            )
        ) THEN %(status_maintenance)s
        WHEN EXISTS (
            SELECT 1 FROM {incident} i
            WHERE i.node_id = n.id AND i.status = %(open)s AND i.severity = %(degraded)s
        ) THEN %(status_degraded)s
        ELSE %(status_active)s
    END AS status
    FROM {node} n WHERE n.id {ids}
) AS derived
WHERE {node}.id = derived.id AND {node}.status <> derived.status
"""


def node_refresh_status(*, node_ids: Iterable[int], now: dt.datetime) -> int:
    """Set each node's status from its open incidents and the windows in progress (module
    docstring); returns how many changed. One statement whatever the number of nodes; a node
    already in its status keeps its `status_changed_at`."""
    ids = sorted(set(node_ids))
    if not ids:
        return 0
    params: dict[str, Any] = {
        "open": IncidentStatus.OPEN,
        "down": Severity.DOWN,
        "degraded": Severity.DEGRADED,
        "in_progress": MaintenanceStatus.IN_PROGRESS,
        "scope_nodes": MaintenanceScope.NODES,
        "scope_cluster": MaintenanceScope.CLUSTER,
        "scope_site": MaintenanceScope.SITE,
        "status_down": NodeStatus.DOWN,
        "status_maintenance": NodeStatus.MAINTENANCE,
        "status_degraded": NodeStatus.DEGRADED,
        "status_active": NodeStatus.ACTIVE,
        "now": connection.ops.adapt_datetimefield_value(now),
    }
    if connection.vendor == "postgresql":
        in_ids, params["ids"] = "= ANY(%(ids)s)", ids
    else:
        in_ids = "IN (" + ", ".join(f"%(id{i})s" for i in range(len(ids))) + ")"
        params.update((f"id{i}", pk) for i, pk in enumerate(ids))
    sql = REFRESH_SQL.format(
        node=Node._meta.db_table,
        incident=Incident._meta.db_table,
        window=MaintenanceWindow._meta.db_table,
        window_nodes=MaintenanceWindow.nodes.through._meta.db_table,
        cluster=Cluster._meta.db_table,
        ids=in_ids,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


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


# --- maintenance windows --------------------------------------------------------------------
#
# A window is written by `window_create`, `window_change` and `window_cancel`, and moved through
# its statuses by `windows_advance` (the beat job `clusters.advance_maintenance_windows`):
# scheduled → in_progress at its start → done at its end; cancelled stays cancelled. Each write
# locks the window row (alone: no lease or cluster lock), re-reads it, refreshes the status of
# every node it touched (before and after) and emits `maintenance.scheduled` (creation) or
# `maintenance.changed` (every later change, status moves included).

# Announced at least this long before its start, a planned window counts as planned.
PLANNED_NOTICE = dt.timedelta(days=7)
# Node ids per `node_refresh_status` call: a campus may hold 20,000 nodes, and SQLite limits the
# parameters of one statement.
REFRESH_CHUNK = 2000
WINDOW_FIELDS = ("title", "description", "category", "kind", "starts_at", "ends_at")


class InvalidWindow(DomainError):
    code = "invalid_maintenance_window"
    default_message = "The maintenance window is not valid."


class WindowClosed(Conflict):
    code = "maintenance_window_closed"
    default_message = "The maintenance window is done or cancelled; it cannot change."


class WindowStarted(Conflict):
    code = "maintenance_window_started"
    default_message = "The maintenance window has started: only its end can change."


def counts_as_planned(window: MaintenanceWindow) -> bool:
    """Planned for the tenant's purposes (docs/rules/fleet.md): declared planned and announced at
    least `PLANNED_NOTICE` (7 days) before it starts. Anything else is emergency or late."""
    return (
        window.kind == MaintenanceKind.PLANNED
        and window.starts_at - window.announced_at >= PLANNED_NOTICE
    )


def window_payload(window: MaintenanceWindow) -> dict[str, Any]:
    """What consumers of a maintenance event get (the fleet contract); instants in ISO 8601."""
    return {
        "window": window.pk,
        "title": window.title,
        "scope": window.scope,
        "kind": window.kind,
        "category": window.category,
        "status": window.status,
        "announced_at": window.announced_at.isoformat(),
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
    }


def _emit_window(kind: str, window: MaintenanceWindow, now: dt.datetime) -> None:
    events.emit(
        kind,
        subject="maintenance_window",
        subject_id=window.pk,
        payload=window_payload(window),
        occurred_at=now,
    )


def _aware(field: str, value: dt.datetime | None) -> None:
    if value is None or not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidWindow(f"{field} must be a timezone-aware instant", extra={"field": field})


def _check_times(*, announced_at: dt.datetime, starts_at: dt.datetime, ends_at: dt.datetime):
    for name, value in (
        ("announced_at", announced_at),
        ("starts_at", starts_at),
        ("ends_at", ends_at),
    ):
        _aware(name, value)
    if ends_at <= starts_at:
        raise InvalidWindow("A window ends after it starts.", extra={"field": "ends_at"})
    if announced_at > ends_at:
        raise InvalidWindow(
            "A window cannot be announced after it ends.", extra={"field": "announced_at"}
        )


def _check_scope(
    *, scope: str, site: Any, cluster: Any, nodes: list[Node] | None
) -> tuple[Any, Any, list[Node]]:
    """The scope's one target (site, cluster or nodes); anything else is refused."""
    if scope == MaintenanceScope.SITE:
        if site is None or cluster is not None or nodes:
            raise InvalidWindow("A campus window names one campus.", extra={"field": "site"})
        return site, None, []
    if scope == MaintenanceScope.CLUSTER:
        if cluster is None or site is not None or nodes:
            raise InvalidWindow("A cluster window names one cluster.", extra={"field": "cluster"})
        return None, cluster, []
    if scope == MaintenanceScope.NODES:
        if site is not None or cluster is not None:
            raise InvalidWindow("A node window names nodes only.", extra={"field": "nodes"})
        if not nodes:
            raise InvalidWindow("A node window needs at least one node.", extra={"field": "nodes"})
        return None, None, list(nodes)
    raise InvalidWindow(f"unknown scope {scope!r}", extra={"field": "scope"})


def _check_choice(field: str, value: str, choices: Any) -> None:
    if value not in choices.values:
        raise InvalidWindow(f"unknown {field} {value!r}", extra={"field": field})


def window_check(
    *,
    scope: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    announced_at: dt.datetime,
    site: Any = None,
    cluster: Any = None,
    nodes: Iterable[Node] | None = None,
) -> None:
    """The refusals of `window_create` about times and scope, for forms to show beside their
    fields before anything is written (`InvalidWindow`, `extra.field`)."""
    _check_times(announced_at=announced_at, starts_at=starts_at, ends_at=ends_at)
    _check_scope(scope=scope, site=site, cluster=cluster, nodes=list(nodes or []))


def _node_ids(window: MaintenanceWindow) -> set[int]:
    return set(window_nodes(window).values_list("pk", flat=True))


def _refresh(node_ids: Iterable[int], now: dt.datetime) -> int:
    ids = sorted(set(node_ids))
    return sum(
        node_refresh_status(node_ids=ids[i : i + REFRESH_CHUNK], now=now)
        for i in range(0, len(ids), REFRESH_CHUNK)
    )


def _status_at(window: MaintenanceWindow, now: dt.datetime) -> str:
    """Where the clock puts a window that is not cancelled."""
    if now >= window.ends_at:
        return MaintenanceStatus.DONE
    if now >= window.starts_at:
        return MaintenanceStatus.IN_PROGRESS
    return MaintenanceStatus.SCHEDULED


def _lock_window(window: MaintenanceWindow) -> MaintenanceWindow:
    return lock_row(MaintenanceWindow, window.pk)


@transaction.atomic
def window_create(
    *,
    title: str,
    scope: str,
    category: str,
    kind: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    now: dt.datetime,
    announced_at: dt.datetime | None = None,
    site: Any = None,
    cluster: Any = None,
    nodes: Iterable[Node] | None = None,
    description: str = "",
    actor: User | None = None,
) -> MaintenanceWindow:
    """Announce a window (at `announced_at`, default `now`; never later than `now`) and emit
    `maintenance.scheduled`. A window already under way at `now` moves at once (the status job's
    rule), which emits `maintenance.changed` and takes its nodes into maintenance."""
    _aware("now", now)
    announced_at = now if announced_at is None else announced_at
    _check_times(announced_at=announced_at, starts_at=starts_at, ends_at=ends_at)
    if announced_at > now:
        raise InvalidWindow(
            "A window is announced when it is recorded, not later.",
            extra={"field": "announced_at"},
        )
    if not title.strip():
        raise InvalidWindow("A window needs a title.", extra={"field": "title"})
    _check_choice("category", category, MaintenanceCategory)
    _check_choice("kind", kind, MaintenanceKind)
    site, cluster, node_list = _check_scope(
        scope=scope, site=site, cluster=cluster, nodes=list(nodes or [])
    )
    window = MaintenanceWindow.objects.create(
        title=title,
        scope=scope,
        site=site,
        cluster=cluster,
        category=category,
        kind=kind,
        announced_at=announced_at,
        starts_at=starts_at,
        ends_at=ends_at,
        description=description,
        created_by=actor,
    )
    if node_list:
        window.nodes.set(node_list)
    _emit_window(FleetEvent.MAINTENANCE_SCHEDULED, window, now)
    if _advance_locked(window, now):
        _refresh(_node_ids(window), now)
    return window


@transaction.atomic
def window_change(
    *,
    window: MaintenanceWindow,
    now: dt.datetime,
    actor: User | None = None,
    scope: str | None = None,
    site: Any = None,
    cluster: Any = None,
    nodes: Iterable[Node] | None = None,
    **fields: Any,
) -> MaintenanceWindow:
    """Change a window's times, scope or wording; emits `maintenance.changed`.

    `fields` are any of `WINDOW_FIELDS`. Refused on a window done or cancelled
    (`maintenance_window_closed`), and, once it has started, for anything but its end and
    wording (`maintenance_window_started`). Moving the start earlier re-announces the window at
    `now` (the tenants learn the new start only then, which may make it late); moving it later
    keeps the announcement. Nodes leaving or entering the scope have their status refreshed.
    """
    _aware("now", now)
    unknown = set(fields) - set(WINDOW_FIELDS)
    if unknown:
        raise InvalidWindow(f"cannot change {sorted(unknown)}", extra={"field": sorted(unknown)[0]})
    for name in ("starts_at", "ends_at"):
        if name in fields:
            _aware(name, fields[name])
    locked = _lock_window(window)
    if locked.status in (MaintenanceStatus.DONE, MaintenanceStatus.CANCELLED):
        raise WindowClosed(extra={"window": locked.pk, "status": locked.status})
    before = _node_ids(locked)
    scope_change = scope is not None
    starts_at = fields.get("starts_at", locked.starts_at)
    ends_at = fields.get("ends_at", locked.ends_at)
    if locked.status == MaintenanceStatus.IN_PROGRESS and (
        scope_change or starts_at != locked.starts_at
    ):
        raise WindowStarted(extra={"window": locked.pk})
    announced_at = now if starts_at < locked.starts_at else locked.announced_at
    _check_times(announced_at=announced_at, starts_at=starts_at, ends_at=ends_at)
    if "category" in fields:
        _check_choice("category", fields["category"], MaintenanceCategory)
    if "kind" in fields:
        _check_choice("kind", fields["kind"], MaintenanceKind)
    if "title" in fields and not str(fields["title"]).strip():
        raise InvalidWindow("A window needs a title.", extra={"field": "title"})
    node_list: list[Node] = []
    if scope is not None:
        site, cluster, node_list = _check_scope(
            scope=scope, site=site, cluster=cluster, nodes=list(nodes or [])
        )
        locked.scope, locked.site, locked.cluster = scope, site, cluster
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.announced_at = announced_at
    locked.updated_by = actor
    locked.save()
    if scope_change:
        locked.nodes.set(node_list)
    _emit_window(FleetEvent.MAINTENANCE_CHANGED, locked, now)
    _advance_locked(locked, now)
    _refresh(before | _node_ids(locked), now)
    return locked


@transaction.atomic
def window_cancel(
    *, window: MaintenanceWindow, now: dt.datetime, actor: User | None = None, note: str = ""
) -> MaintenanceWindow:
    """Call a window off at `now`; emits `maintenance.changed`.

    A scheduled window becomes cancelled. A window in progress cannot be undone: it ends at
    `now` and is done (its time so far stays on record for availability). Done or cancelled
    windows are refused (`maintenance_window_closed`).
    """
    _aware("now", now)
    locked = _lock_window(window)
    if locked.status in (MaintenanceStatus.DONE, MaintenanceStatus.CANCELLED):
        raise WindowClosed(extra={"window": locked.pk, "status": locked.status})
    if locked.status == MaintenanceStatus.IN_PROGRESS:
        locked.status = MaintenanceStatus.DONE
        locked.ends_at = max(now, locked.starts_at + dt.timedelta(microseconds=1))
    else:
        locked.status = MaintenanceStatus.CANCELLED
    if note:
        locked.description = (locked.description + "\n\n" if locked.description else "") + note
    locked.updated_by = actor
    locked.save(update_fields=["status", "ends_at", "description", "updated_by", "updated_at"])
    _refresh(_node_ids(locked), now)
    _emit_window(FleetEvent.MAINTENANCE_CHANGED, locked, now)
    return locked


def _advance_locked(window: MaintenanceWindow, now: dt.datetime) -> bool:
    """Move a locked window to where the clock puts it; True if it moved (`maintenance.changed`
    emitted; the caller refreshes the nodes)."""
    if window.status == MaintenanceStatus.CANCELLED:
        return False
    target = _status_at(window, now)
    if target == window.status:
        return False
    window.status = target
    window.save(update_fields=["status", "updated_at"])
    _emit_window(FleetEvent.MAINTENANCE_CHANGED, window, now)
    return True


def windows_due(now: dt.datetime) -> QuerySet[MaintenanceWindow]:
    """Windows the clock has overtaken: scheduled ones past their start, running ones past
    their end."""
    return MaintenanceWindow.objects.filter(
        Q(status=MaintenanceStatus.SCHEDULED, starts_at__lte=now)
        | Q(status=MaintenanceStatus.IN_PROGRESS, ends_at__lte=now)
    )


def windows_advance(*, now: dt.datetime) -> dict[str, int]:
    """The status job: every window the clock has overtaken moves (catching up on any missed
    run: a window wholly in the past goes straight to done), each in its own transaction under
    its row lock with its status re-read, so a second or concurrent run moves nothing twice.
    Returns how many windows reached each status."""
    _aware("now", now)
    moved: dict[str, int] = {}
    for pk in windows_due(now).order_by("starts_at", "pk").values_list("pk", flat=True):
        with transaction.atomic():
            window = lock_row(MaintenanceWindow, pk)
            if _advance_locked(window, now):
                _refresh(_node_ids(window), now)
                moved[window.status] = moved.get(window.status, 0) + 1
    return moved
