"""Backlog, stated and enforceable, as of any date (docs/rules/receivables.md).

As of the end of UTC day `D`, for every signed lease (approved on or before then) still running:

* **stated**: the rent its contract says is still to come, from the end of `D` to its end as
  known then (the term end, or an earlier end a notice received by then binds);
* **enforceable**: the same rent cut at the earliest end either party could force by a notice
  given on `D`: `min(end, local_midnight(D + notice_days + 1))` (leasing/rules.py
  `notice_min_end`).

Both are split by calendar month of the lease's contract zone and priced by the billing rule
(`services.lease_rent_due`: what the invoices net of credit notes will say). The calendar of
latest useful notice dates (leasing/rules.py `latest_useful_notice_date`) says, per lease, the
last day a notice still shortens it.

Notices count as known on `D`: received by its end and not withdrawn by then (a notice
received after `D` is not taken into account, so a past date gives what was known then). A
notice on some lines ends those lines' stated and enforceable backlog at its effective end; once
every line is ended by notices, the lease ends when its last line does (as
leasing/notices.py `_binding_ends` decides for the lease itself). The stored ends of the lease
and its lines are not used: they say what is known now.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from common.contract_time import local_date, local_midnight
from common.money import ZERO
from leasing import rules
from leasing.choices import LeaseStatus, LineStatus
from leasing.events import EventKind
from leasing.models import Lease, LeaseEvent, Notice

from . import proration
from .ledger import day_end
from .services import lease_rent_due


@dataclass
class LeaseBacklog:
    lease: Lease
    end: dt.datetime
    enforceable_end: dt.datetime
    latest_useful_notice: dt.date
    stated: dict[dt.date, Decimal] = field(default_factory=dict)
    enforceable: dict[dt.date, Decimal] = field(default_factory=dict)

    @property
    def stated_total(self) -> Decimal:
        return sum(self.stated.values(), ZERO)

    @property
    def enforceable_total(self) -> Decimal:
        return sum(self.enforceable.values(), ZERO)


@dataclass
class Backlog:
    day: dt.date
    leases: list[LeaseBacklog]

    def by_month(self) -> tuple[list[dt.date], dict[dt.date, Decimal], dict[dt.date, Decimal]]:
        stated: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
        enforceable: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
        for row in self.leases:
            for month, amount in row.stated.items():
                stated[month] += amount
            for month, amount in row.enforceable.items():
                enforceable[month] += amount
        return sorted(stated), dict(stated), dict(enforceable)

    def by_tenant(self) -> dict[int, tuple[Decimal, Decimal]]:
        out: dict[int, tuple[Decimal, Decimal]] = {}
        for row in self.leases:
            s, e = out.get(row.lease.tenant_id, (ZERO, ZERO))
            out[row.lease.tenant_id] = (s + row.stated_total, e + row.enforceable_total)
        return out

    @property
    def stated_total(self) -> Decimal:
        return sum((r.stated_total for r in self.leases), ZERO)

    @property
    def enforceable_total(self) -> Decimal:
        return sum((r.enforceable_total for r in self.leases), ZERO)


def _by_month(
    lease: Lease, start: dt.datetime, end: dt.datetime, line_ends: dict[int, dt.datetime]
) -> dict[dt.date, Decimal]:
    """Rent of `[start, end)` per calendar month of the contract zone, each line cut at its
    end in `line_ends`."""
    out: dict[dt.date, Decimal] = {}
    if end <= start:
        return out
    tz = lease.contract_timezone
    month = proration.month_start(local_date(start, tz))
    while True:
        m_start, m_end = proration.period_bounds(month, tz)
        if m_start >= end:
            break
        a, b = max(m_start, start), min(m_end, end)
        if b > a:
            out[month] = lease_rent_due(lease, a, b, line_ends=line_ends)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


def _ends_known_at(
    lease: Lease, notices: list[Notice], cutoff: dt.datetime
) -> tuple[dt.datetime, dict[int, dt.datetime]]:
    """The lease's end and each line's end as the notices known before `cutoff` set them."""
    end = lease.term_end
    line_ends: dict[int, dt.datetime] = {}
    for notice in notices:
        if notice.received_at >= cutoff:
            continue
        if notice.withdrawn_at is not None and notice.withdrawn_at < cutoff:
            continue
        notice_end = max(notice.effective_end, lease.commencement)
        line_ids = [line.pk for line in notice.lines.all()]
        if not line_ids:
            end = min(end, notice_end)
        for pk in line_ids:
            line_ends[pk] = min(line_ends.get(pk, notice_end), notice_end)
    lines = list(lease.lines.all())
    running = [line.pk for line in lines if line.status != LineStatus.CANCELLED]
    if running and all(pk in line_ends for pk in running):
        end = min(end, max(line_ends[pk] for pk in running))
    return end, {line.pk: min(end, line_ends.get(line.pk, end)) for line in lines}


def backlog(*, day: dt.date, tenant_id: int | None = None) -> Backlog:
    cutoff = day_end(day)
    found = Lease.objects.exclude(status__in=(LeaseStatus.DRAFT, LeaseStatus.VOID)).filter(
        term_end__gt=cutoff
    )
    if tenant_id is not None:
        found = found.filter(tenant_id=tenant_id)
    leases = list(found.select_related("tenant").prefetch_related("lines").order_by("pk"))
    approved = dict(
        LeaseEvent.objects.filter(
            lease__in=leases, kind__in=(EventKind.LEASE_APPROVED, EventKind.LEASE_CREATED)
        )
        .order_by("at")
        .values_list("lease_id", "at")
    )
    notices: dict[int, list[Notice]] = defaultdict(list)
    for notice in Notice.objects.filter(lease__in=leases).prefetch_related("lines"):
        notices[notice.lease_id].append(notice)
    rows = []
    for lease in leases:
        signed_at = approved.get(lease.pk)
        if signed_at is not None and signed_at >= cutoff:
            continue  # not signed yet as of that day
        end, line_ends = _ends_known_at(lease, notices[lease.pk], cutoff)
        if end <= cutoff:
            continue
        tz = lease.contract_timezone
        enforceable_end = min(end, rules.notice_min_end(day, lease.notice_days, tz))
        # Rent is counted in whole contract days: from the end of `day` in the lease's zone.
        start = max(local_midnight(day + dt.timedelta(days=1), tz), lease.commencement)
        rows.append(
            LeaseBacklog(
                lease=lease,
                end=end,
                enforceable_end=enforceable_end,
                latest_useful_notice=rules.latest_useful_notice_date(end, lease.notice_days, tz),
                stated=_by_month(lease, start, end, line_ends),
                enforceable=_by_month(lease, start, enforceable_end, line_ends),
            )
        )
    return Backlog(day, rows)
