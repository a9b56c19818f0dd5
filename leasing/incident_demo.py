"""Demo incidents for `make run` (called once by `seed_demo`): an open incident a tenant
reported on a node it holds, and a monitoring source's health events — heartbeats, a GPU
failure that was opened and healed, a degraded network link still open. Idempotent: a second
run finds the demo monitoring source and adds nothing.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from clusters.ingest import HealthEventIn, health_events_ingest, monitoring_source_create
from clusters.models import MonitoringSource
from leasing.api.incidents import tenant_incident_report
from leasing.choices import LeaseStatus
from leasing.models import Allocation

SOURCE = "demo-monitoring"
HOUR = dt.timedelta(hours=1)
HEARTBEATS = 12


def seed_incidents(*, now: dt.datetime) -> dict[str, int]:
    """Rows created per kind (nothing when the demo incidents exist already or no active
    lease holds a node)."""
    if MonitoringSource.objects.filter(name=SOURCE).exists():
        return {"incidents": 0, "health events": 0}
    reported_at = now - 3 * HOUR
    held = list(
        Allocation.objects.filter(
            line__lease__status=LeaseStatus.ACTIVE, starts_at__lte=now - 12 * HOUR
        )
        .filter(Q(ends_at__gt=now))
        .select_related("node", "line__lease__tenant")
        .order_by("line__lease_id", "node_id")[: HEARTBEATS + 3]
    )
    if len(held) < 3:
        return {"incidents": 0, "health events": 0}
    reported, failed, flaky = held[0], held[1], held[2]
    tenant_incident_report(
        tenant=reported.line.lease.tenant,
        hostname=reported.node.hostname,
        category="nvlink",
        description="NCCL all-reduce hangs on this node since this morning; GPU 5 shows NVLink "
        "replay errors.",
        evidence={"xid": 74, "gpu": 5, "nccl_test": "all_reduce_perf", "busbw_gbps": 12.4},
        now=reported_at,
    )
    source, _ = monitoring_source_create(name=SOURCE)
    items = [
        HealthEventIn(
            event_id=f"demo-hb-{i}",
            node=allocation.node.hostname,
            observed_at=now - 10 * HOUR + i * 10 * dt.timedelta(minutes=1),
            severity="ok",
        )
        for i, allocation in enumerate(held[3:])
    ]
    items += [
        HealthEventIn(
            event_id="demo-gpu-fail",
            node=failed.node.hostname,
            observed_at=now - 8 * HOUR,
            severity="down",
            category="gpu",
            message="GPU 2 fell off the bus (Xid 79)",
            details={"xid": 79, "gpu": 2},
        ),
        HealthEventIn(
            event_id="demo-gpu-back",
            node=failed.node.hostname,
            observed_at=now - 5 * HOUR,
            severity="ok",
            category="gpu",
            message="GPU 2 back after a reset",
        ),
        HealthEventIn(
            event_id="demo-link-flaps",
            node=flaky.node.hostname,
            observed_at=now - HOUR,
            severity="degraded",
            category="network",
            message="InfiniBand port 3 flapping, 2 % packet loss",
            details={"port": 3, "loss": 0.02},
        ),
    ]
    result = health_events_ingest(source=source, items=items, now=now)
    return {"incidents": 1 + len(result.opened), "health events": result.applied}
