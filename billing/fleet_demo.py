"""Demo money that follows the machines (called once by `seed_demo`, after `seed_billing`).

On the demo's leases, as of `now`:

* **a past month with incidents and maintenance**: on the first active demo lease that was
  running all last month, two nodes fail for a while and a firmware window announced three days
  ahead (late) takes four nodes for six hours; the service-credits run then settles last month:
  its availability report and service credit note (kind `service`) with the report;
* **a late hand-over**: on the second such lease, two nodes are recorded as accepted three days
  and fifteen hours after commencement; the next billing run credits the rent invoiced for
  their node-days before acceptance (a `delivery` credit note).

Idempotent: the incidents and the window carry a `demo:` marker and are made once, the late
acceptances are set once (while no node of that lease was accepted late), and both runs write
only what is missing.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from clusters.choices import IncidentStatus
from clusters.models import Incident, MaintenanceWindow
from common.contract_time import local_date
from leasing.choices import LeaseStatus
from leasing.models import Allocation, Lease

from . import proration, services
from .service_credits import service_credit_run

MARK = "demo: fleet money"


def _running_leases(now: dt.datetime) -> list[Lease]:
    """Active demo leases that ran all of last month (contract zone UTC for simplicity of the
    reading: any zone works)."""
    this_month = proration.month_start(local_date(now, "UTC"))
    last_month = proration.month_start(this_month - dt.timedelta(days=1))
    start = dt.datetime.combine(last_month, dt.time(), tzinfo=dt.UTC)
    return list(
        Lease.objects.filter(
            reference__startswith="demo:",
            status=LeaseStatus.ACTIVE,
            commencement__lte=start - dt.timedelta(days=2),
            lines__allocations__isnull=False,
        )
        .distinct()
        .order_by("pk")[:2]
    )


def seed_fleet_money(*, now: dt.datetime) -> None:
    leases = _running_leases(now)
    if not leases:
        return
    this_month = proration.month_start(local_date(now, leases[0].contract_timezone))
    last_month = proration.month_start(this_month - dt.timedelta(days=1))
    p_start, _ = proration.period_bounds(last_month, leases[0].contract_timezone)
    with transaction.atomic():
        if not Incident.objects.filter(description=MARK).exists():
            allocations = list(Allocation.objects.filter(line__lease=leases[0]).order_by("pk")[:6])
            for k, (day, hours) in enumerate(((4, 30), (17, 9))):
                opened = p_start + dt.timedelta(days=day, hours=3)
                Incident.objects.create(
                    node=allocations[k].node,
                    category="gpu" if k == 0 else "nvlink",
                    source="monitoring",
                    status=IncidentStatus.RESOLVED,
                    opened_at=opened,
                    resolved_at=opened + dt.timedelta(hours=hours),
                    description=MARK,
                    reporter="demo monitoring",
                )
            starts = p_start + dt.timedelta(days=11, hours=22)
            window = MaintenanceWindow.objects.create(
                title="BMC firmware (announced late)",
                scope="nodes",
                category="firmware",
                kind="planned",
                status="done",
                announced_at=starts - dt.timedelta(days=3),
                starts_at=starts,
                ends_at=starts + dt.timedelta(hours=6),
                description=MARK,
            )
            window.nodes.set([a.node for a in allocations[2:6]])
        if (
            len(leases) > 1
            and not Allocation.objects.filter(
                line__lease=leases[1], accepted_at__gt=leases[1].commencement
            ).exists()
        ):
            late = leases[1].commencement + dt.timedelta(days=3, hours=15)
            pending = Allocation.objects.filter(
                line__lease=leases[1], accepted_at=leases[1].commencement
            ).order_by("pk")[:2]
            Allocation.objects.filter(pk__in=[a.pk for a in pending]).update(accepted_at=late)
    services.billing_run(now=now)  # the delivery credit
    service_credit_run(now=now)  # last month's service credit
