"""Aging and standing as of any date, from the records (docs/rules/receivables.md).

What a tenant owed at the end of a UTC day `D` is read from rows that carry their instants:
invoices issued before the day's end (and not voided by then), less every application made
before it. Nothing is stored per date, so asking for a past date gives what the report said
that day, and asking twice gives the same answer.

Buckets by days past due (`D` − the due date, UTC): current (not yet due), 1–30, 31–60,
61–90, more than 90. Standing follows: anything past due is PAST_DUE, anything more than 30
days past due DELINQUENT, else CURRENT. It is written on the tenant (`refresh_standing`) by
the transactions that change what a tenant owes and by the daily overdue job, so leasing can
refuse a delinquent tenant's new lease requests without reading billing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from common.money import ZERO, round_money
from leasing.choices import TenantStanding
from leasing.models import Tenant

from .ledger import day_end, day_of

BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")
# A tenant owing anything more than this many days past due is delinquent.
DELINQUENT_AFTER_DAYS = 30


@dataclass
class Aging:
    """What one tenant owed at the end of `day`, by bucket, and its unapplied money."""

    tenant_id: int
    day: dt.date
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, ZERO))
    unapplied_cash: Decimal = ZERO
    credit_balance: Decimal = ZERO

    @property
    def owed(self) -> Decimal:
        return sum(self.buckets.values(), ZERO)

    @property
    def past_due(self) -> Decimal:
        return self.owed - self.buckets["current"]

    @property
    def standing(self) -> str:
        if any(self.buckets[b] > 0 for b in ("days_31_60", "days_61_90", "days_over_90")):
            return TenantStanding.DELINQUENT
        if self.buckets["days_1_30"] > 0:
            return TenantStanding.PAST_DUE
        return TenantStanding.CURRENT


def _money(value) -> Decimal:
    """A sum from the database as money (SQLite returns numbers, PostgreSQL Decimals)."""
    if value is None:
        return ZERO
    return round_money(value if isinstance(value, Decimal) else Decimal(str(value)))


def _adapt(at: dt.datetime):
    return connection.ops.adapt_datetimefield_value(at)


AGING_SQL = """
SELECT x.tenant_id,
  SUM(CASE WHEN x.due_at >= %(m0)s THEN x.owed ELSE 0 END),
  SUM(CASE WHEN x.due_at < %(m0)s AND x.due_at >= %(m30)s THEN x.owed ELSE 0 END),
  SUM(CASE WHEN x.due_at < %(m30)s AND x.due_at >= %(m60)s THEN x.owed ELSE 0 END),
  SUM(CASE WHEN x.due_at < %(m60)s AND x.due_at >= %(m90)s THEN x.owed ELSE 0 END),
  SUM(CASE WHEN x.due_at < %(m90)s THEN x.owed ELSE 0 END)
FROM (
  SELECT i.tenant_id, i.due_at, i.total - COALESCE(a.applied, 0) AS owed
  FROM billing_invoice i
  LEFT JOIN (
    SELECT invoice_id, SUM(amount) AS applied FROM billing_application
    WHERE applied_at < %(cutoff)s {app_tenants} GROUP BY invoice_id
  ) a ON a.invoice_id = i.id
  WHERE i.status <> 'draft' AND i.issued_at < %(cutoff)s
    AND NOT (i.status = 'void' AND i.voided_at < %(cutoff)s) {inv_tenants}
) x
WHERE x.owed <> 0
GROUP BY x.tenant_id
"""

# Unapplied money per tenant and kind of source at the cutoff: what the sources held then
# (a payment reversed by then holds nothing) less what was applied and refunded before it.
UNAPPLIED_SQL = """
SELECT tenant_id, kind, SUM(amount) FROM (
  SELECT p.tenant_id, 'cash' AS kind, p.amount AS amount FROM billing_payment p
  WHERE p.recorded_at < %(cutoff)s {p_tenants} AND NOT EXISTS (
    SELECT 1 FROM billing_paymentreversal r WHERE r.payment_id = p.id
      AND r.reversed_at < %(cutoff)s)
  UNION ALL
  SELECT c.tenant_id, 'credit', c.total FROM billing_creditnote c
  WHERE c.status = 'issued' AND c.issued_at < %(cutoff)s {c_tenants}
  UNION ALL
  SELECT a.tenant_id, CASE WHEN a.payment_id IS NULL THEN 'credit' ELSE 'cash' END, -a.amount
  FROM billing_application a
  WHERE a.applied_at < %(cutoff)s {a_tenants}
    AND (a.payment_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM billing_paymentreversal r WHERE r.payment_id = a.payment_id
        AND r.reversed_at < %(cutoff)s))
  UNION ALL
  SELECT f.tenant_id, CASE WHEN f.payment_id IS NULL THEN 'credit' ELSE 'cash' END, -f.amount
  FROM billing_refund f WHERE f.refunded_at < %(cutoff)s {f_tenants}
) u GROUP BY tenant_id, kind
"""


def _tenant_clause(alias: str, tenant_ids: list[int] | None) -> str:
    if tenant_ids is None:
        return ""
    ids = ", ".join(str(int(t)) for t in tenant_ids) or "NULL"
    return f"AND {alias}.tenant_id IN ({ids})"


def aging(
    *, day: dt.date, tenant_ids: Iterable[int] | None = None, unapplied: bool = True
) -> dict[int, Aging]:
    """Aging of every tenant that owed or held money at the end of UTC `day` (or of those
    named). Two queries whatever the number of invoices and payments."""
    ids = None if tenant_ids is None else sorted(set(tenant_ids))
    cutoff = day_end(day)
    midnight = cutoff - dt.timedelta(days=1)
    params = {
        "cutoff": _adapt(cutoff),
        "m0": _adapt(midnight),
        "m30": _adapt(midnight - dt.timedelta(days=30)),
        "m60": _adapt(midnight - dt.timedelta(days=60)),
        "m90": _adapt(midnight - dt.timedelta(days=90)),
    }
    result: dict[int, Aging] = {}
    sql = AGING_SQL.format(
        app_tenants=_tenant_clause("billing_application", ids),
        inv_tenants=_tenant_clause("i", ids),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for tenant_id, *sums in cursor.fetchall():
            row = result.setdefault(tenant_id, Aging(tenant_id, day))
            for bucket, value in zip(BUCKETS, sums, strict=True):
                row.buckets[bucket] = _money(value)
        if unapplied:
            cursor.execute(
                UNAPPLIED_SQL.format(
                    p_tenants=_tenant_clause("p", ids),
                    c_tenants=_tenant_clause("c", ids),
                    a_tenants=_tenant_clause("a", ids),
                    f_tenants=_tenant_clause("f", ids),
                ),
                {"cutoff": params["cutoff"]},
            )
            for tenant_id, kind, total in cursor.fetchall():
                row = result.setdefault(tenant_id, Aging(tenant_id, day))
                if kind == "cash":
                    row.unapplied_cash = _money(total)
                else:
                    row.credit_balance = _money(total)
    if ids is not None:
        for tenant_id in ids:
            result.setdefault(tenant_id, Aging(tenant_id, day))
    return result


def tenant_aging(tenant: Tenant, *, day: dt.date) -> Aging:
    return aging(day=day, tenant_ids=[tenant.pk])[tenant.pk]


def totals(rows: Iterable[Aging]) -> dict[str, Decimal]:
    out = dict.fromkeys(BUCKETS, ZERO)
    for row in rows:
        for bucket in BUCKETS:
            out[bucket] += row.buckets[bucket]
    return out


def refresh_standing(
    tenant_ids: Iterable[int] | None = None, *, now: dt.datetime
) -> tuple[int, int, int]:
    """Write each tenant's standing as its aging at `now` says (tenant rows after invoice
    rows, in the lock order). Returns how many moved to past due, delinquent and current."""
    ids = None if tenant_ids is None else sorted(set(tenant_ids))
    rows = aging(day=day_of(now), tenant_ids=ids, unapplied=False)
    by_standing: dict[str, list[int]] = {s: [] for s in TenantStanding.values}
    for tenant_id, row in rows.items():
        by_standing[row.standing].append(tenant_id)
    tenants = Tenant.objects.all() if ids is None else Tenant.objects.filter(pk__in=ids)
    moved = []
    for standing in (TenantStanding.PAST_DUE, TenantStanding.DELINQUENT):
        moved.append(
            tenants.filter(pk__in=by_standing[standing])
            .exclude(standing=standing)
            .update(standing=standing)
        )
    not_behind = by_standing[TenantStanding.PAST_DUE] + by_standing[TenantStanding.DELINQUENT]
    current = (
        tenants.filter(~Q(pk__in=not_behind))
        .exclude(standing=TenantStanding.CURRENT)
        .update(standing=TenantStanding.CURRENT)
    )
    return moved[0], moved[1], current
