"""Set-based helpers of common/db.py: `among` (a filter on many values) and
`update_from_values` (one UPDATE giving each row its own values), on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.choices import IncidentStatus
from clusters.ingest import monitoring_source_create
from clusters.models import HealthEvent, Incident, Node
from common.db import among, update_from_values
from tests.factories.clusters import cluster_with_nodes

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def nodes():
    return list(cluster_with_nodes(6).nodes.order_by("pk"))


def test_among_selects_exactly_the_rows_named(nodes):
    wanted = [nodes[0].hostname, nodes[3].hostname, "no-such-host"]
    assert set(Node.objects.filter(among("hostname", wanted)).values_list("pk", flat=True)) == {
        nodes[0].pk,
        nodes[3].pk,
    }
    # Through a foreign key's column, and from any iterable.
    for node in nodes[:3]:
        Incident.objects.create(node=node, category="gpu", source="operator", opened_at=T0)
    picked = Incident.objects.filter(among("node_id", (n.pk for n in nodes[1:])))
    assert sorted(picked.values_list("node_id", flat=True)) == [nodes[1].pk, nodes[2].pk]
    assert not Node.objects.filter(among("pk", [])).exists()


def test_update_from_values_gives_each_row_its_own_values(nodes):
    incidents = [
        Incident.objects.create(node=node, category="gpu", source="operator", opened_at=T0)
        for node in nodes
    ]
    changed = incidents[1:4]
    with CaptureQueriesContext(connection) as queries:
        count = update_from_values(
            Incident,
            ["id"],
            ["status", "resolved_at", "resolution"],
            [
                (i.pk, IncidentStatus.RESOLVED, T0 + dt.timedelta(hours=n), f"fixed {n}")
                for n, i in enumerate(changed, start=1)
            ],
        )
    assert count == 3
    assert len(queries) == 1
    rows = {i.pk: (i.status, i.resolved_at, i.resolution) for i in Incident.objects.all()}
    for n, incident in enumerate(changed, start=1):
        assert rows[incident.pk] == ("resolved", T0 + dt.timedelta(hours=n), f"fixed {n}")
    for incident in (incidents[0], *incidents[4:]):
        assert rows[incident.pk] == ("open", None, "")
    assert update_from_values(Incident, ["id"], ["resolution"], []) == 0


def test_update_from_values_matches_a_compound_key_and_splits_at_the_parameter_limit(
    nodes, monkeypatch
):
    a, _ = monitoring_source_create(name="a")
    b, _ = monitoring_source_create(name="b")
    incident = Incident.objects.create(
        node=nodes[0], category="gpu", source="monitoring", opened_at=T0
    )
    HealthEvent.objects.bulk_create(
        HealthEvent(
            source=source,
            event_id=f"e{i}",
            node=nodes[i % len(nodes)],
            observed_at=T0,
            received_at=T0,
            severity="ok",
        )
        for source in (a, b)
        for i in range(10)
    )
    # Three values per row: at most two rows per statement under a limit of seven parameters.
    monkeypatch.setattr(connection.features, "max_query_params", 7)
    with CaptureQueriesContext(connection) as queries:
        count = update_from_values(
            HealthEvent,
            ["source_id", "event_id"],
            ["incident_id"],
            [(a.pk, f"e{i}", incident.pk) for i in range(5)],
        )
    assert count == 5
    assert len(queries) == 3
    linked = HealthEvent.objects.filter(incident=incident)
    assert sorted(linked.values_list("source_id", "event_id")) == [
        (a.pk, f"e{i}") for i in range(5)
    ]
