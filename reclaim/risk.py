"""Revenue at risk: what taking back a scope of capacity on a date would cost and bring.

For a scope (a campus, a cluster, a GPU model or a tenant) and a date D on which the operator
wants the capacity back, every open line of a signed lease holding it answers:

- it ends anyway by D (its term end or an earlier notice): nothing to do, no rent forgone;
- otherwise the latest date an operator notice must be given to have it back at the local
  midnight of D (`D − notice_days − 1`, docs/rules/lease.md); if that date is past, the
  earliest date it can be back instead;
- the rent that ends (monthly rate) and the exact rent forgone from then to the line's end;
- the credit note that would follow: rent already invoiced for time after it is back;
- the model's internal value of the capacity over the same window (the planner's valuer,
  with the default internal workload unless told otherwise: capacity too small to hold one
  replica of it is worth 0 to it).

A read: nothing is written. Money is Decimal, rounded once per line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Max, QuerySet

from billing import proration
from billing.choices import BILLED_STATUSES, RENT_KINDS
from billing.models import Invoice
from common.contract_time import local_midnight
from common.money import round_money
from leasing.models import LeaseLine
from leasing.notice_effects import NoticeRequest

from . import planner, selectors
from .services import leased_document

ZERO = Decimal("0.00")
SCOPES = {
    "site": ("campus", "cluster__site__slug"),
    "cluster": ("cluster", "cluster__slug"),
    "model": ("GPU model", "cluster__accelerator__slug"),
    "tenant": ("tenant", "lease__tenant__slug"),
}


@dataclass(frozen=True)
class LineRisk:
    facts: planner.LineFacts
    ends_anyway: bool
    notice_by: dt.date | None  # the last useful notice date; None when it ends anyway
    too_late: bool  # `notice_by` is past: back at `back_at`, after D
    back_at: dt.datetime  # when the capacity would be back
    rent_forgone: Decimal
    credit: Decimal
    value: Decimal


@dataclass(frozen=True)
class RiskReport:
    scope: str
    on: dt.date
    lines: list[LineRisk]

    @property
    def to_take(self) -> list[LineRisk]:
        return [r for r in self.lines if not r.ends_anyway]

    @property
    def monthly_rent_ending(self) -> Decimal:
        return sum((r.facts.monthly_rate for r in self.to_take), ZERO)

    @property
    def monthly_rent_ending_anyway(self) -> Decimal:
        return sum((r.facts.monthly_rate for r in self.lines if r.ends_anyway), ZERO)

    @property
    def rent_forgone(self) -> Decimal:
        return sum((r.rent_forgone for r in self.lines), ZERO)

    @property
    def credits(self) -> Decimal:
        return sum((r.credit for r in self.lines), ZERO)

    @property
    def value(self) -> Decimal:
        return sum((r.value for r in self.lines), ZERO)

    @property
    def notice_date(self) -> dt.date | None:
        """One notice date for a decision over the lines to take: the earliest one needed."""
        dates = [r.notice_by for r in self.to_take if r.notice_by is not None]
        return min(dates) if dates else None


def scope_lines(kind: str, value: str) -> QuerySet[LeaseLine]:
    """Open lines of signed leases in the scope (`SCOPES`)."""
    return selectors.reclaimable_lines().filter(**{SCOPES[kind][1]: value})


def _invoiced_through(lease_ids: Sequence[int]) -> dict[int, dt.date]:
    """Per lease, the first day after the last month billed in advance (rent or supplement)."""
    rows = (
        Invoice.objects.filter(
            lease_id__in=list(lease_ids), kind__in=RENT_KINDS, status__in=BILLED_STATUSES
        )
        .values("lease_id")
        .annotate(last=Max("period"))
    )
    out = {}
    for row in rows:
        last: dt.date = row["last"]
        out[row["lease_id"]] = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def revenue_at_risk(
    *,
    kind: str,
    value: str,
    on: dt.date,
    today: dt.date,
    economics: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
) -> RiskReport:
    """The report for scope (`kind`, `value`) and date `on` (module docstring)."""
    facts = selectors.line_facts(list(scope_lines(kind, value).values_list("pk", flat=True)))
    invoiced = _invoiced_through([f.lease_id for f in facts])
    valuer = planner.Valuer(leased_document(facts, workload=workload), economics) if facts else None
    out = []
    for f in facts:
        wanted = local_midnight(on, f.tz)
        if f.line_end <= wanted:
            out.append(LineRisk(f, True, None, False, f.line_end, ZERO, ZERO, ZERO))
            continue
        notice_by = on - dt.timedelta(days=f.notice_days + 1)
        too_late = notice_by < today
        window = planner.line_window(f, max(notice_by, today))
        credit = _credit(f, window, invoiced.get(f.lease_id))
        worth = ZERO
        if valuer is not None and not window.empty:
            per_day = valuer.per_day([window])
            days = planner.window_days(window.start, window.end)
            worth = round_money(Decimal(str(per_day)) * Decimal(str(days)))
        out.append(
            LineRisk(
                facts=f,
                ends_anyway=False,
                notice_by=max(notice_by, today) if too_late else notice_by,
                too_late=too_late,
                back_at=window.start,
                rent_forgone=proration.to_money(window.rent_exact),
                credit=credit,
                value=worth,
            )
        )
    label = f"{SCOPES[kind][0]} {value}"
    return RiskReport(scope=label, on=on, lines=out)


@dataclass(frozen=True)
class NoticeEffect:
    """What approving a decision does to one lease line: the notice's end, when the capacity is
    back, the rent forgone and the credit note that follows."""

    facts: planner.LineFacts
    notice_effective_end: dt.datetime
    back_at: dt.datetime
    until: dt.datetime
    rent_forgone: Decimal
    credit: Decimal


def approval_effects(notices: Sequence[dict[str, Any]], notice_date: dt.date) -> list[NoticeEffect]:
    """The effect of the notices a decision's approval gives (`services.planned_notices`), line
    by line, in the same terms as the revenue-at-risk page. Empty: approving changes nothing."""
    line_ids = [i for n in notices for i in (n["lines"] or n["open_line_ids"])]
    return _effects(selectors.line_facts(line_ids), lambda f: planner.line_window(f, notice_date))


def lease_notice_effects(requests: Sequence[NoticeRequest]) -> list[NoticeEffect]:
    """The effect of operator notices on whole leases (the lease admin's "Give operator
    notice", through `leasing.notice_effects`), each on its lease's local notice date and
    requested end, in the same terms as a decision's approval. Empty: nothing would change."""
    wanted = {r.lease_id: r for r in requests}
    line_ids = selectors.reclaimable_lines().filter(lease_id__in=list(wanted))
    return _effects(
        selectors.line_facts(list(line_ids.values_list("pk", flat=True))),
        lambda f: planner.line_window(
            f, wanted[f.lease_id].notice_date, wanted[f.lease_id].requested_end
        ),
    )


def _effects(
    facts: Sequence[planner.LineFacts], window_of: Callable[[planner.LineFacts], planner.LineWindow]
) -> list[NoticeEffect]:
    """Each line's effect under its notice's window; lines that would not change are left out."""
    invoiced = _invoiced_through([f.lease_id for f in facts])
    out = []
    for f in facts:
        window = window_of(f)
        if window.empty:
            continue
        out.append(
            NoticeEffect(
                facts=f,
                notice_effective_end=window.notice_effective_end,
                back_at=window.start,
                until=window.end,
                rent_forgone=proration.to_money(window.rent_exact),
                credit=_credit(f, window, invoiced.get(f.lease_id)),
            )
        )
    return out


def _credit(f: planner.LineFacts, window: planner.LineWindow, through: dt.date | None) -> Decimal:
    """Rent already invoiced for `[window.start, …)`: what the credit note after it gives back."""
    if through is None:
        return ZERO
    paid_to = min(local_midnight(through, f.tz), window.end)
    if paid_to <= window.start:
        return ZERO
    return proration.to_money(proration.accrual(f.monthly_rate, window.start, paid_to, f.tz))
