"""Webhooks of the fleet: incidents, maintenance windows, acceptance, replacement
(docs/api.md, "Webhooks"; docs/architecture.md, domain events).

One consumer, `webhooks.fleet`, for the six kinds. It finds the tenants an event concerns and
queues their deliveries like `services.announce` does (`services.queue_for_tenants`: signed,
unique per endpoint and webhook id, sent after commit):

* `incident.opened`, `incident.resolved`: the tenants holding the node at the event's instant;
* `maintenance.scheduled`, `maintenance.changed`: those holding any of the window's nodes
  during `[starts_at, ends_at)`;
* `node.accepted`, `node.replaced`: the lease's tenant (`payload["tenant"]`).

Holding follows the allocator's rule (`leasing.selectors.held_at`, `held_during`: a lease in
holdover still holds its nodes). What a tenant receives is its own view: hostnames, not node
ids, and never the tenant id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from clusters.fleet import FleetEvent, window_nodes
from clusters.models import MaintenanceWindow
from common.events import Event
from common.models import DomainEvent
from leasing.models import Allocation
from leasing.selectors import held_at, held_during

from . import services
from .models import WebhookEndpoint

INCIDENT_KINDS = (FleetEvent.INCIDENT_OPENED, FleetEvent.INCIDENT_RESOLVED)
MAINTENANCE_KINDS = (FleetEvent.MAINTENANCE_SCHEDULED, FleetEvent.MAINTENANCE_CHANGED)
INCIDENT_FIELDS = (
    "incident",
    "hostname",
    "category",
    "severity",
    "source",
    "status",
    "opened_at",
    "resolved_at",
)


def wanted(events: Sequence[Event]) -> list[Event]:
    """The `wants` filter: events naming their tenant go through `services.listening`; the
    others (the tenants are found when consumed) only if some active endpoint listens to their
    kind at all. One query per batch."""
    batch = list(events)
    if not batch:
        return []
    if batch[0].kind in (services.NODE_ACCEPTED, services.NODE_REPLACED):
        return services.listening(batch)
    kind = batch[0].kind
    subscribed = WebhookEndpoint.objects.filter(is_active=True).values_list(
        "event_types", flat=True
    )
    return batch if any(not types or kind in types for types in subscribed) else []


def _tenants_holding(node_ids: Any, start: dt.datetime, end: dt.datetime | None) -> set[int]:
    """Tenants holding any of `node_ids` (ids or a subquery) at `start`, or during
    `[start, end)`."""
    rule = held_at(start, now=start) if end is None else held_during(start, end, now=start)
    return set(
        Allocation.objects.filter(rule, node_id__in=node_ids)
        .values_list("line__lease__tenant_id", flat=True)
        .distinct()
    )


def announce_fleet(event: DomainEvent) -> list[int]:
    """The consumer: queue the event for the tenants it concerns (module docstring)."""
    payload = event.payload
    if event.kind in INCIDENT_KINDS:
        tenants = _tenants_holding([payload["node"]], event.occurred_at, None)
        moment = "opened" if event.kind == FleetEvent.INCIDENT_OPENED else "resolved"
        return services.queue_for_tenants(
            tenants,
            event,
            lambda: (
                f"evt_incident_{moment}_{payload['incident']}",
                {key: payload[key] for key in INCIDENT_FIELDS},
            ),
        )
    if event.kind in MAINTENANCE_KINDS:
        window = MaintenanceWindow.objects.get(pk=payload["window"])
        tenants = _tenants_holding(
            window_nodes(window).values("pk"),
            dt.datetime.fromisoformat(payload["starts_at"]),
            dt.datetime.fromisoformat(payload["ends_at"]),
        )
        return services.queue_for_tenants(
            tenants, event, lambda: (f"evt_maintenance_{event.pk}", dict(payload))
        )
    # node.accepted, node.replaced: the lease's tenant, named in the payload.
    subject_key = "record" if event.kind == services.NODE_ACCEPTED else "replacement"
    kind_name = event.kind.replace(".", "_")
    return services.queue_for_tenants(
        [payload["tenant"]],
        event,
        lambda: (
            f"evt_{kind_name}_{payload[subject_key]}",
            {key: value for key, value in payload.items() if key != "tenant"},
        ),
    )
