"""Health events from monitoring: who may push them, and what a batch does (docs/rules/fleet.md,
"Incidents"; docs/api.md, "Operator ingestion").

**Credentials.** A `MonitoringSource` has its own bearer key `mk_<prefix>_<secret>` (not a
tenant key), made, stored and compared like tenant keys (`common/keys.py`): shown once by
`manage.py create_monitoring_source NAME`, stored as a SHA-256 digest, revocable in the admin.

**A batch** (`health_events_ingest`) is all or nothing: every item is checked first (known node,
an event id not repeated within the batch, an observation not in the future) and any failure
refuses the whole batch with each failing item named by index and field; nothing is written.
Then, in one transaction holding the source's row (so two batches of one source apply one
after the other and an event id is applied once, whatever the race):

* an event id the source already sent is a duplicate: reported, not applied again;
* every new event is stored (`HealthEvent`), in the order observed;
* `degraded` or `down` on a node without an open monitoring incident of that category opens
  one (source `monitoring`, opened at the observation, with the event's severity); the event
  records the incident it opened. An open one of that category already exists: the event is
  stored and opens nothing (the incident keeps the severity it opened with);
* `ok` resolves the node's open monitoring incidents (of the event's category if it names one,
  else all of them) at the observation; the event records the first incident it resolved. An
  incident reported later than the `ok` (events out of order) stays open. Tenant and
  operator incidents are never resolved by monitoring: a person opened them, a person closes
  them;
* the status of the nodes whose incidents moved is refreshed once
  (`clusters.fleet.node_refresh_status`), and `incident.opened` / `incident.resolved` are
  emitted for each incident, as one batch.

Queries are bounded whatever the batch size (`tests/api/test_health_events.py`): the checks
read the nodes once; the write locks the source, inserts the events (on PostgreSQL one
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING` per chunk, which is also
the duplicate check), reads the open incidents of the events' nodes once, inserts the new
incidents, updates the resolved ones and links the events to their incidents with one
`UPDATE ... FROM (VALUES ...)` each (`common.db.update_from_values`), and refreshes the nodes'
status in one statement. Long lists of values go to PostgreSQL as one array
(`common.db.among`), not an `IN` list.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q

from common import events
from common.clock import resolve_now
from common.db import among, lock_row, update_from_values
from common.exceptions import Conflict, InvalidInput
from common.keys import hash_key, matches, new_key, split_key

from . import fleet
from .choices import IncidentCategory, IncidentSource, IncidentStatus, Severity
from .models import HealthEvent, Incident, MonitoringSource, Node

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_SCHEME = "mk"
MAX_BATCH = 1_000
# An observation this far ahead of the server's clock is a clock error at the source: refused.
FUTURE_SKEW = dt.timedelta(minutes=5)
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
RESOLUTION_TEXT = "Monitoring reported the node healthy (event {event_id})."
INSERT_BATCH = 2_000
SEVERITIES = frozenset(Severity.values)
CATEGORIES = frozenset(IncidentCategory.values)
FAILING = frozenset((Severity.DOWN, Severity.DEGRADED))


class MonitoringSourceExists(Conflict):
    code = "monitoring_source_exists"
    default_message = "A monitoring source with this name exists."


# --- credentials ------------------------------------------------------------------------------


@transaction.atomic
def monitoring_source_create(
    *, name: str, actor: User | None = None, now: dt.datetime | None = None
) -> tuple[MonitoringSource, str]:
    """A new source and its raw key (the only time the key exists in clear)."""
    resolve_now(now)
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput(extra={"fields": {"name": ["1 to 100 characters."]}})
    if MonitoringSource.objects.filter(name=name).exists():
        raise MonitoringSourceExists(extra={"name": name})
    prefix, raw = new_key(KEY_SCHEME)
    source = MonitoringSource.objects.create(
        name=name,
        prefix=prefix,
        key_hash=hash_key(raw),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    return source, raw


@transaction.atomic
def monitoring_source_revoke(
    *, source: MonitoringSource, actor: User | None = None, now: dt.datetime | None = None
) -> MonitoringSource:
    """Revoke the source's key from `now` (a second revocation keeps the first instant)."""
    now = resolve_now(now)
    MonitoringSource.objects.filter(pk=source.pk, revoked_at__isnull=True).update(revoked_at=now)
    source.refresh_from_db(fields=["revoked_at"])
    return source


def monitoring_source_authenticate(
    raw: str, *, now: dt.datetime | None = None
) -> MonitoringSource | None:
    """The live source whose key is `raw`, or None (one indexed query, constant-time compare;
    `last_used_at` written at most once a minute)."""
    prefix = split_key(raw, KEY_SCHEME)
    if prefix is None:
        return None
    now = resolve_now(now)
    source = MonitoringSource.objects.filter(prefix=prefix).first()
    if not matches(raw, source.key_hash if source is not None else None) or source is None:
        return None
    if source.revoked_at is not None:
        return None
    if source.last_used_at is None or source.last_used_at <= now - LAST_USED_RESOLUTION:
        MonitoringSource.objects.filter(pk=source.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        source.last_used_at = now
    return source


# --- a batch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthEventIn:
    """One event as the API parsed it (shapes checked; the service checks the rest)."""

    event_id: str
    node: str  # hostname
    observed_at: dt.datetime
    severity: str
    category: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestResult:
    received: int = 0
    applied: int = 0
    duplicates: list[str] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)  # incident ids
    resolved: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "incidents_opened": self.opened,
            "incidents_resolved": self.resolved,
        }


def item_field(index: int, name: str) -> str:
    """How an error names one item's field: `events[3].node`."""
    return f"events[{index}].{name}"


def batch_errors(
    items: Sequence[tuple[int, HealthEventIn]], now: dt.datetime, *, size: int | None = None
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The ids of the nodes the items name (by hostname) and the failing items' fields. `items`
    carry their index in the batch (an API drops the items it could not parse, and still names
    the others' errors by their place); `size` is the whole batch's length."""
    errors: dict[str, list[str]] = {}
    size = len(items) if size is None else size
    if size > MAX_BATCH:
        errors["events"] = [f"At most {MAX_BATCH} events per batch (got {size})."]
        return {}, errors
    first_at: dict[str, int] = {}
    for index, item in items:
        if item.event_id in first_at:
            errors[item_field(index, "event_id")] = [
                f"Repeated in this batch (first at index {first_at[item.event_id]})."
            ]
        else:
            first_at[item.event_id] = index
        if item.observed_at.tzinfo is None or item.observed_at.utcoffset() is None:
            errors[item_field(index, "observed_at")] = ["Must carry a UTC offset."]
        elif item.observed_at > now + FUTURE_SKEW:
            errors[item_field(index, "observed_at")] = ["Must not be in the future."]
        if item.severity not in SEVERITIES:
            errors[item_field(index, "severity")] = [f"One of {', '.join(Severity.values)}."]
        if item.category and item.category not in CATEGORIES:
            errors[item_field(index, "category")] = [
                f"One of {', '.join(IncidentCategory.values)}."
            ]
        elif not item.category and item.severity in FAILING:
            errors[item_field(index, "category")] = ["Required when severity is not ok."]
    hostnames = {item.node for _, item in items}
    nodes = dict(Node.objects.filter(among("hostname", hostnames)).values_list("hostname", "pk"))
    for index, item in items:
        if item.node not in nodes:
            errors[item_field(index, "node")] = ["No node with this hostname."]
    return nodes, errors


def refuse(errors: dict[str, list[str]]) -> InvalidInput:
    """The refusal of a malformed batch (nothing applied)."""
    return InvalidInput(
        f"Batch refused: {len(errors)} problem(s); nothing was applied.",
        extra={"fields": dict(sorted(errors.items(), key=lambda kv: _order(kv[0])))},
    )


def _order(name: str) -> tuple[int, str]:
    """`events[10].node` after `events[9].node`."""
    if name.startswith("events["):
        index, _, rest = name[len("events[") :].partition("]")
        if index.isdigit():
            return int(index), rest
    return -1, name


def health_events_ingest(
    *, source: MonitoringSource, items: Sequence[HealthEventIn], now: dt.datetime | None = None
) -> IngestResult:
    """Apply a batch of health events from `source` (module docstring). A malformed batch
    raises `InvalidInput` naming each failing item's field (`events[i].field`), writing
    nothing."""
    now = resolve_now(now)
    node_ids, errors = batch_errors(list(enumerate(items)), now)
    if errors:
        raise refuse(errors)
    with transaction.atomic():
        return _apply(source, items, node_ids, now)


def _apply(
    source: MonitoringSource,
    items: Sequence[HealthEventIn],
    node_ids: dict[str, int],
    now: dt.datetime,
) -> IngestResult:
    lock_row(MonitoringSource, source.pk)  # one batch of a source at a time
    result = IngestResult(received=len(items))
    ordered = sorted(items, key=lambda item: item.observed_at)
    stored = _store(source, ordered, node_ids, now)
    result.duplicates = [item.event_id for item in items if item.event_id not in stored]
    fresh = [item for item in ordered if item.event_id in stored]
    result.applied = len(fresh)
    if not fresh:
        return result
    # The open monitoring incidents of those nodes, by node and category.
    open_by_node: dict[int, dict[str, Incident]] = defaultdict(dict)
    for incident in Incident.objects.filter(
        among("node_id", {node_ids[item.node] for item in fresh}),
        status=IncidentStatus.OPEN,
        source=IncidentSource.MONITORING,
    ).order_by("opened_at", "pk"):
        open_by_node[incident.node_id].setdefault(incident.category, incident)
    opened: list[Incident] = []
    resolved: list[Incident] = []
    links: list[tuple[HealthEventIn, Incident]] = []
    for item in fresh:
        node_id = node_ids[item.node]
        linked: Incident | None = None
        current = open_by_node[node_id]
        if item.severity in FAILING:
            if item.category not in current:
                linked = Incident(
                    node_id=node_id,
                    category=item.category,
                    severity=item.severity,
                    source=IncidentSource.MONITORING,
                    opened_at=item.observed_at,
                    description=item.message,
                    evidence={"event_id": item.event_id, "details": item.details},
                    reporter=source.name,
                )
                current[item.category] = linked
                opened.append(linked)
        else:
            for category in [c for c in current if not item.category or c == item.category]:
                incident = current[category]
                if incident.opened_at > item.observed_at:
                    continue  # an older "ok" arriving late does not close a newer report
                incident.status = IncidentStatus.RESOLVED
                incident.resolved_at = item.observed_at
                incident.resolution = RESOLUTION_TEXT.format(event_id=item.event_id)[:500]
                del current[category]
                resolved.append(incident)
                linked = linked or incident
        if linked is not None:
            links.append((item, linked))
    # Incidents born in this batch are inserted as they ended it (open, or already resolved by
    # a later "ok"); those open before it are updated.
    Incident.objects.bulk_create(opened, batch_size=INSERT_BATCH)  # sets their pks
    born = {id(i) for i in opened}
    update_from_values(
        Incident,
        ["id"],
        ["status", "resolved_at", "resolution"],
        [(i.pk, i.status, i.resolved_at, i.resolution) for i in resolved if id(i) not in born],
    )
    # Each event that opened or resolved an incident records it.
    update_from_values(
        HealthEvent,
        ["source_id", "event_id"],
        ["incident_id"],
        [(source.pk, item.event_id, incident.pk) for item, incident in links],
    )
    # A node's status follows its incidents (and windows): only those whose incidents moved
    # can change.
    fleet.node_refresh_status(node_ids={i.node_id for i in (*opened, *resolved)}, now=now)
    # The events' payloads name each incident's host.
    hostnames = {pk: hostname for hostname, pk in node_ids.items()}
    for incident in (*opened, *resolved):
        incident.node = Node.from_db(
            Node.objects.db, ["id", "hostname"], [incident.node_id, hostnames[incident.node_id]]
        )
    events.emit_many(fleet.incident_events(opened=opened, resolved=resolved))
    result.opened = [i.pk for i in opened]
    result.resolved = [i.pk for i in resolved]
    return result


def _store(
    source: MonitoringSource,
    items: Sequence[HealthEventIn],
    node_ids: dict[str, int],
    now: dt.datetime,
) -> set[str]:
    """Insert the events the source has not sent before, in the order given, with no incident
    yet; return their event ids (the others are duplicates). On PostgreSQL one `INSERT ...
    SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING` per chunk: the unique index on
    (source, event id) is the duplicate check, with no model instance per row (the batch's
    largest cost otherwise). Elsewhere one read of the ids already stored, then `bulk_create`;
    both are exact because the caller holds the source's row."""
    if connection.vendor != "postgresql":
        ids = [item.event_id for item in items]
        known = set(
            HealthEvent.objects.filter(source=source, event_id__in=ids).values_list(
                "event_id", flat=True
            )
        )
        HealthEvent.objects.bulk_create(
            (
                HealthEvent(
                    source=source,
                    event_id=item.event_id,
                    node_id=node_ids[item.node],
                    observed_at=item.observed_at,
                    received_at=now,
                    severity=item.severity,
                    category=item.category,
                    message=item.message,
                    details=item.details,
                )
                for item in items
                if item.event_id not in known
            ),
            batch_size=INSERT_BATCH,
        )
        return set(ids) - known
    assert HealthEvent._meta.db_table == "clusters_healthevent"  # the literal below
    stored: set[str] = set()
    with connection.cursor() as cursor:
        for offset in range(0, len(items), INSERT_BATCH):
            chunk = items[offset : offset + INSERT_BATCH]
            cursor.execute(
                'INSERT INTO "clusters_healthevent" (source_id, event_id, node_id, observed_at, '
                "received_at, severity, category, message, details, incident_id) "
                "SELECT %s, e, n, o, %s, s, c, m, d::jsonb, NULL FROM unnest("
                "%s::text[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[], "
                "%s::text[], %s::text[]) AS t(e, n, o, s, c, m, d) "
                "ON CONFLICT (source_id, event_id) DO NOTHING RETURNING event_id",
                [
                    source.pk,
                    now,
                    [item.event_id for item in chunk],
                    [node_ids[item.node] for item in chunk],
                    [item.observed_at for item in chunk],
                    [item.severity for item in chunk],
                    [item.category for item in chunk],
                    [item.message for item in chunk],
                    [json.dumps(item.details) for item in chunk],
                ],
            )
            stored.update(event_id for (event_id,) in cursor.fetchall())
    return stored
