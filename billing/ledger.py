"""The revenue ledger: a double-entry journal written by the transactions that move money.

Five accounts (`LedgerAccount`): accounts receivable (AR), deferred revenue, revenue, cash and
customer credit. A `Posting` debits one account and credits another with one positive amount,
so every posting balances on its own and the journal's debits equal its credits to the cent.
Postings are append-only (database guards of migration 0007, both engines).

Who posts what, always inside the transaction that does it (docs/rules/receivables.md):

| event | debit | credit |
| --- | --- | --- |
| invoice issued (`invoices_issued`) | AR | deferred revenue |
| invoice voided (`invoice_voided`) | deferred revenue | AR |
| credit note issued (`credit_notes_issued`) | deferred revenue | customer credit |
| payment received | cash | customer credit |
| money applied to an invoice (payment or credit note) | customer credit | AR |
| application undone (payment reversed) | AR | customer credit |
| payment reversed | customer credit | cash |
| refund | customer credit | cash |
| revenue recognized (`recognize_day`) | deferred revenue | revenue (reversed when negative) |

Recognition (the accrual rule): each issued document line has a `RevenueSchedule`; its amount
(negative for a credit note line, zero once the invoice is void) is recognized in proportion to
the time of `[service_start, service_end)` elapsed at the end of each UTC day, rounded half-up
on the cumulative figure, so a line's daily amounts add up to exactly its amount. A credit note
therefore reduces the revenue of the period it concerns: days already recognized are taken
back on the next run, later days are never recognized.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum

from common.clock import resolve_now
from common.db import update_from_values
from common.money import ZERO

from .choices import LedgerAccount, PostingKind
from .models import (
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    Posting,
    RecognitionRun,
    RevenueSchedule,
)

if TYPE_CHECKING:
    from .models import Payment

A = LedgerAccount
UTC = dt.UTC


def day_of(at: dt.datetime) -> dt.date:
    return at.astimezone(UTC).date()


def day_end(day: dt.date) -> dt.datetime:
    """The instant a UTC day closes (midnight after it)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)


def posting(
    kind: str,
    debit: str,
    credit: str,
    amount: Decimal,
    *,
    at: dt.datetime,
    tenant_id: int,
    currency: str,
    invoice_id: int | None = None,
    credit_note_id: int | None = None,
    payment_id: int | None = None,
) -> Posting | None:
    """One posting (None for a zero amount; a negative amount swaps the accounts)."""
    if amount == 0:
        return None
    if amount < 0:
        debit, credit, amount = credit, debit, -amount
    return Posting(
        day=day_of(at),
        posted_at=at,
        kind=kind,
        debit=debit,
        credit=credit,
        amount=amount,
        currency=currency,
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        credit_note_id=credit_note_id,
        payment_id=payment_id,
    )


def post(rows: Iterable[Posting | None]) -> list[Posting]:
    """Write postings (one insert); call inside the transaction that made the change."""
    kept = [row for row in rows if row is not None]
    if kept:
        Posting.objects.bulk_create(kept, batch_size=2000)
    return kept


# --- documents -------------------------------------------------------------------------------


def invoices_issued(invoices: Sequence[Invoice]) -> None:
    """AR / deferred revenue for each newly issued invoice, and its lines' schedules."""
    _documents_issued(
        PostingKind.INVOICE, A.AR, A.DEFERRED, Invoice, InvoiceLine, "invoice_id", invoices, 1
    )


def invoice_voided(invoice: Invoice, *, at: dt.datetime) -> None:
    """Deferred revenue / AR for the voided total; its revenue is taken back by the next
    recognition (the schedules' amounts drop to zero)."""
    post(
        [
            posting(
                PostingKind.VOID,
                A.DEFERRED,
                A.AR,
                invoice.total,
                at=at,
                tenant_id=invoice.tenant_id,
                currency=invoice.currency,
                invoice_id=invoice.pk,
            )
        ]
    )
    RevenueSchedule.objects.filter(invoice_id=invoice.pk).update(amount=ZERO, open=True)


def credit_notes_issued(notes: Sequence[CreditNote]) -> None:
    """Deferred revenue / customer credit for each issued credit note, and its schedules (the
    negative of each line: a credit note takes revenue back)."""
    _documents_issued(
        PostingKind.CREDIT_NOTE,
        A.DEFERRED,
        A.CUSTOMER_CREDIT,
        CreditNote,
        CreditNoteLine,
        "credit_note_id",
        notes,
        -1,
    )


def _documents_issued(
    kind: str,
    debit: str,
    credit: str,
    model: type[Invoice] | type[CreditNote],
    line_model: type[InvoiceLine] | type[CreditNoteLine],
    column: str,
    documents: Sequence[Invoice] | Sequence[CreditNote],
    sign: int,
    batch: int = 2000,
) -> None:
    """The postings and schedules of newly issued documents, copied by the database from the
    rows just written (`INSERT … SELECT`, both engines): two statements per issue day and
    batch, whatever the number of documents and lines, so an issuing run pays for the
    ledger rows without building them in Python. The posting is `posting`'s: `total` debited
    to `debit` and credited to `credit`, the accounts swapped for a negative total, none for
    zero; a schedule carries `sign` × each non-zero line amount over its service span."""
    posting_table = Posting._meta.db_table
    schedule_table = RevenueSchedule._meta.db_table
    table = model._meta.db_table
    line_table = line_model._meta.db_table
    adapt_day = connection.ops.adapt_datefield_value
    by_day: dict[dt.date, list[int]] = defaultdict(list)
    for doc in documents:
        by_day[day_of(doc.issued_at)].append(doc.pk)  # type: ignore[arg-type]  # issued
    with connection.cursor() as cursor:
        for day, ids in by_day.items():
            for offset in range(0, len(ids), batch):
                chunk = ids[offset : offset + batch]
                marks = ", ".join(["%s"] * len(chunk))
                # Table and column names are constants; every value is a parameter.
                cursor.execute(
                    f"INSERT INTO {posting_table} (day, posted_at, kind, debit, credit, "  # nosec B608
                    f"amount, currency, tenant_id, {column}) "
                    f"SELECT %s, issued_at, %s, CASE WHEN total > 0 THEN %s ELSE %s END, "
                    f"CASE WHEN total > 0 THEN %s ELSE %s END, ABS(total), currency, "
                    f"tenant_id, id FROM {table} WHERE id IN ({marks}) AND total <> 0 "
                    f"ORDER BY id",
                    [adapt_day(day), kind, debit, credit, credit, debit, *chunk],
                )
                cursor.execute(
                    f"INSERT INTO {schedule_table} (tenant_id, {column}, amount, "  # nosec B608
                    f"service_start, service_end, recognized, open) "
                    f"SELECT d.tenant_id, d.id, %s * l.amount, l.service_start, "
                    f"l.service_end, 0, %s FROM {line_table} l JOIN {table} d "
                    f"ON d.id = l.{column} WHERE d.id IN ({marks}) AND l.amount <> 0 "
                    f"ORDER BY l.id",
                    [sign, True, *chunk],
                )


def cash_postings(
    kind: str, amount: Decimal, *, payment: Payment, at: dt.datetime
) -> Posting | None:
    """Payment received (cash / customer credit); negative: reversed or refunded."""
    return posting(
        kind,
        A.CASH,
        A.CUSTOMER_CREDIT,
        amount,
        at=at,
        tenant_id=payment.tenant_id,
        currency=payment.currency,
        payment_id=payment.pk,
    )


# --- recognition -----------------------------------------------------------------------------


def _micros(span: dt.timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def recognized_through(amount: Decimal, start: dt.datetime, end: dt.datetime, cutoff: dt.datetime):
    """What of `amount` over `[start, end)` is recognized at `cutoff`: the elapsed share of the
    time (in microseconds), rounded half-up (away from zero) to the cent in exact integer
    arithmetic; the whole amount once the service ended. `RECOGNIZE_SQL` computes the same in
    the database, to the cent."""
    if cutoff >= end or end <= start:
        return amount
    if cutoff <= start:
        return ZERO
    cents = int(amount * 100)  # money: whole cents
    elapsed, span = _micros(cutoff - start), _micros(end - start)
    whole = (2 * abs(cents) * elapsed + span) // (2 * span)
    return Decimal(whole if cents >= 0 else -whole).scaleb(-2)


@dataclass
class RecognitionOutcome:
    day: dt.date
    ran: bool
    postings: int = 0
    amount: Decimal = ZERO
    by_tenant: dict[int, Decimal] = field(default_factory=dict)


def _update_schedules(rows: list[tuple[int, Decimal, bool]], batch: int = 5000) -> None:
    """Set (recognized, open) of many schedules, one statement per batch: on PostgreSQL joined
    with three arrays (`unnest`: three parameters however many rows, so the driver does not
    parse and bind a statement of thousands of placeholders), elsewhere with a VALUES list
    (`common.db.update_from_values`)."""
    if connection.vendor != "postgresql":
        update_from_values(RevenueSchedule, ["id"], ["recognized", "open"], rows)
        return
    table = RevenueSchedule._meta.db_table
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), batch):
            ids, recognized, is_open = zip(*rows[offset : offset + batch], strict=True)
            cursor.execute(
                # Table and column names are constants; every value is a parameter.
                f"UPDATE {table} SET recognized = v.recognized, open = v.is_open "  # nosec B608
                "FROM unnest(%s::bigint[], %s::numeric[], %s::boolean[]) "
                f"AS v(id, recognized, is_open) WHERE {table}.id = v.id",
                [list(ids), list(recognized), list(is_open)],
            )


def recognize_day(*, day: dt.date, now: dt.datetime | None = None) -> RecognitionOutcome:
    """Recognize revenue through the end of UTC `day`, once: the day's `RecognitionRun` row is
    inserted in the transaction that writes its postings, so a second call (a duplicate beat, a
    retry, a concurrent worker) finds the day done and writes nothing.

    Catches up on what earlier days could not see (a document issued back-dated or after its
    service, a credit note for days already recognized): each open schedule is brought to what
    its line should have recognized by the day's end. Postings are summed per document."""
    now = resolve_now(now)
    cutoff = day_end(day)
    if RecognitionRun.objects.filter(day=day).exists():
        return RecognitionOutcome(day, ran=False)
    try:
        with transaction.atomic():
            run = RecognitionRun.objects.create(day=day, cutoff=cutoff, ran_at=now)
            return _recognize(run, cutoff, now)
    except IntegrityError:
        if RecognitionRun.objects.filter(day=day).exists():
            return RecognitionOutcome(day, ran=False)  # a concurrent run got there first
        raise


# Recognition in one statement (PostgreSQL): each open schedule brought to its target (the
# rule of `recognized_through`, in integer cents and microseconds: `div` truncates, so
# `div(2·|cents|·elapsed + span, 2·span)` is the half-up rounding of the exact share), the
# deltas summed per document and posted by `posting`'s rule (accounts swapped for a negative
# sum, none for zero). Table names are the models'; every value is a parameter.
RECOGNIZE_SQL = """
WITH due AS (
    SELECT s.id, s.tenant_id, s.invoice_id, s.credit_note_id, s.amount, s.service_end,
           s.recognized AS old, COALESCE(i.currency, c.currency) AS currency,
           CASE
               WHEN %(cutoff)s >= s.service_end OR s.service_end <= s.service_start THEN s.amount
               WHEN %(cutoff)s <= s.service_start THEN 0
               ELSE sign(s.amount) * div(
                   2 * abs(s.amount * 100)
                     * (extract(epoch FROM %(cutoff)s - s.service_start) * 1000000)
                   + extract(epoch FROM s.service_end - s.service_start) * 1000000,
                   2 * extract(epoch FROM s.service_end - s.service_start) * 1000000
               ) / 100
           END AS target
    FROM {schedule} s
    LEFT JOIN {invoice} i ON i.id = s.invoice_id
    LEFT JOIN {credit_note} c ON c.id = s.credit_note_id
    WHERE s.open AND s.service_start < %(cutoff)s
), moved AS (
    UPDATE {schedule} s
    SET recognized = d.target, open = (%(cutoff)s < d.service_end OR d.target <> d.amount)
    FROM due d
    WHERE s.id = d.id
      AND (d.target <> d.old OR NOT (%(cutoff)s < d.service_end OR d.target <> d.amount))
    RETURNING d.tenant_id, d.invoice_id, d.credit_note_id, d.currency, d.target - d.old AS delta
), per_document AS (
    SELECT tenant_id, invoice_id, credit_note_id, currency, sum(delta) AS delta
    FROM moved GROUP BY tenant_id, invoice_id, credit_note_id, currency
)
INSERT INTO {posting} (day, posted_at, kind, debit, credit, amount, currency, tenant_id,
                       invoice_id, credit_note_id)
SELECT %(day)s, %(at)s, %(kind)s,
       CASE WHEN delta > 0 THEN %(debit)s ELSE %(credit)s END,
       CASE WHEN delta > 0 THEN %(credit)s ELSE %(debit)s END,
       abs(delta), currency, tenant_id, invoice_id, credit_note_id
FROM per_document WHERE delta <> 0
ORDER BY tenant_id, invoice_id, credit_note_id
RETURNING tenant_id, debit, amount
"""


def _recognize(run: RecognitionRun, cutoff: dt.datetime, now: dt.datetime) -> RecognitionOutcome:
    if connection.vendor == "postgresql":
        return _recognize_in_database(run, cutoff)
    rows = RevenueSchedule.objects.filter(open=True, service_start__lt=cutoff).values_list(
        "pk",
        "tenant_id",
        "invoice_id",
        "credit_note_id",
        "amount",
        "service_start",
        "service_end",
        "recognized",
        "invoice__currency",
        "credit_note__currency",
    )
    per_doc: dict[tuple[int, int | None, int | None], Decimal] = defaultdict(lambda: ZERO)
    currencies: dict[tuple[int | None, int | None], str] = {}
    updates = []
    for (
        pk,
        tenant_id,
        invoice_id,
        note_id,
        amount,
        start,
        end,
        recognized,
        invoice_currency,
        note_currency,
    ) in rows.iterator(chunk_size=5000):
        target = recognized_through(amount, start, end, cutoff)
        delta = target - recognized
        still_open = cutoff < end or target != amount
        if delta or not still_open:
            updates.append((pk, target, still_open))
        if delta:
            per_doc[(tenant_id, invoice_id, note_id)] += delta
            currencies[(invoice_id, note_id)] = invoice_currency or note_currency
    written = post(
        posting(
            PostingKind.RECOGNITION,
            A.DEFERRED,
            A.REVENUE,
            delta,
            at=run.cutoff - dt.timedelta(microseconds=1),  # on the day recognized
            tenant_id=tenant_id,
            currency=currencies[(invoice_id, note_id)],
            invoice_id=invoice_id,
            credit_note_id=note_id,
        )
        for (tenant_id, invoice_id, note_id), delta in per_doc.items()
    )
    if updates:
        _update_schedules(updates)
    total = sum(per_doc.values(), ZERO)
    by_tenant: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for (tenant_id, _, _), delta in per_doc.items():
        by_tenant[tenant_id] += delta
    RecognitionRun.objects.filter(pk=run.pk).update(postings=len(written), amount=total)
    return RecognitionOutcome(run.day, True, len(written), total, dict(by_tenant))


def _recognize_in_database(run: RecognitionRun, cutoff: dt.datetime) -> RecognitionOutcome:
    """`_recognize` as one statement (`RECOGNIZE_SQL`): the schedules are moved, and the
    postings written, by the database."""
    at = run.cutoff - dt.timedelta(microseconds=1)  # on the day recognized
    sql = RECOGNIZE_SQL.format(
        schedule=RevenueSchedule._meta.db_table,
        invoice=Invoice._meta.db_table,
        credit_note=CreditNote._meta.db_table,
        posting=Posting._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "cutoff": cutoff,
                "day": day_of(at),
                "at": at,
                "kind": PostingKind.RECOGNITION,
                "debit": A.DEFERRED,
                "credit": A.REVENUE,
            },
        )
        written = cursor.fetchall()
    by_tenant: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for tenant_id, debit, amount in written:
        by_tenant[tenant_id] += amount if debit == A.DEFERRED else -amount
    total = sum(by_tenant.values(), ZERO)
    RecognitionRun.objects.filter(pk=run.pk).update(postings=len(written), amount=total)
    return RecognitionOutcome(run.day, True, len(written), total, dict(by_tenant))


def recognize_due(*, now: dt.datetime | None = None, limit_days: int = 400) -> list:
    """The daily job: recognize every UTC day that has closed and was not recognized yet,
    oldest first (catches up after downtime). The first run starts at the first day anything
    was issued."""
    now = resolve_now(now)
    yesterday = day_of(now) - dt.timedelta(days=1)
    last = RecognitionRun.objects.order_by("-day").values_list("day", flat=True).first()
    if last is None:
        first = Posting.objects.order_by("day").values_list("day", flat=True).first()
        if first is None:
            return []
        start = first
    else:
        start = last + dt.timedelta(days=1)
    start = max(start, yesterday - dt.timedelta(days=limit_days))
    outcomes = []
    day = start
    while day <= yesterday:
        outcomes.append(recognize_day(day=day, now=now))
        day += dt.timedelta(days=1)
    return outcomes


# --- reports ---------------------------------------------------------------------------------


def balances(*, through: dt.date | None = None, before: dt.date | None = None, **filters):
    """Each account's balance (debits − credits) over the postings of the days selected."""
    qs = Posting.objects.filter(**filters)
    if through is not None:
        qs = qs.filter(day__lte=through)
    if before is not None:
        qs = qs.filter(day__lt=before)
    result = dict.fromkeys(A.values, ZERO)
    for account, total in qs.values_list("debit").annotate(total=Sum("amount")):
        result[account] += total
    for account, total in qs.values_list("credit").annotate(total=Sum("amount")):
        result[account] -= total
    return result


@dataclass(frozen=True)
class MonthClose:
    """One month of the ledger. Deferred revenue is a credit balance, shown positive."""

    month: dt.date
    opening_deferred: Decimal
    billed: Decimal  # invoices issued, net of voids
    credited: Decimal  # credit notes issued
    recognized: Decimal  # net revenue recognized
    closing_deferred: Decimal
    debits: Decimal
    credits: Decimal
    closing: dict[str, Decimal]

    @property
    def ties(self) -> bool:
        rolled = self.opening_deferred + self.billed - self.credited - self.recognized
        return rolled == self.closing_deferred and self.debits == self.credits


def _flow(qs, kind: str, account: str) -> Decimal:
    """Net credit to `account` of the postings of `kind`."""
    rows = qs.filter(kind=kind)
    credit = rows.filter(credit=account).aggregate(s=Sum("amount"))["s"] or ZERO
    debit = rows.filter(debit=account).aggregate(s=Sum("amount"))["s"] or ZERO
    return credit - debit


def month_close(month: dt.date, **filters) -> MonthClose:
    """The month's roll-forward of deferred revenue and the trial balance at its end."""
    month = month.replace(day=1)
    after = (month + dt.timedelta(days=32)).replace(day=1)
    opening = -balances(before=month, **filters)[A.DEFERRED]
    closing_all = balances(before=after, **filters)
    qs = Posting.objects.filter(day__gte=month, day__lt=after, **filters)
    billed = _flow(qs, PostingKind.INVOICE, A.DEFERRED) + _flow(qs, PostingKind.VOID, A.DEFERRED)
    credited = -_flow(qs, PostingKind.CREDIT_NOTE, A.DEFERRED)
    recognized = -_flow(qs, PostingKind.RECOGNITION, A.DEFERRED)
    total = qs.aggregate(s=Sum("amount"))["s"] or ZERO
    return MonthClose(
        month=month,
        opening_deferred=opening,
        billed=billed,
        credited=credited,
        recognized=recognized,
        closing_deferred=-closing_all[A.DEFERRED],
        debits=total,
        credits=total,
        closing=closing_all,
    )


CSV_HEADER = (
    "date",
    "posting",
    "kind",
    "account",
    "debit",
    "credit",
    "currency",
    "tenant",
    "document",
)


def journal_csv(*, start: dt.date | None = None, end: dt.date | None = None) -> str:
    """The journal as CSV, two rows per posting (its debit and its credit line), in the form
    accounting packages import: date, entry id, account, debit, credit."""
    qs = Posting.objects.select_related("tenant", "invoice", "credit_note", "payment").order_by(
        "day", "id"
    )
    if start is not None:
        qs = qs.filter(day__gte=start)
    if end is not None:
        qs = qs.filter(day__lte=end)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for p in qs.iterator(chunk_size=2000):
        doc = ""
        if p.invoice is not None:
            doc = p.invoice.number or ""
        elif p.credit_note is not None:
            doc = p.credit_note.number or ""
        elif p.payment is not None:
            doc = f"payment {p.payment.reference}"
        common = (p.currency, p.tenant.slug, doc)
        writer.writerow((p.day.isoformat(), p.pk, p.kind, p.debit, f"{p.amount:.2f}", "", *common))
        writer.writerow((p.day.isoformat(), p.pk, p.kind, p.credit, "", f"{p.amount:.2f}", *common))
    return out.getvalue()


def deferred_of(*, invoice: Invoice | None = None, through: dt.date) -> Decimal:
    """Deferred revenue still held for one invoice at the end of `through`."""
    qs = Posting.objects.filter(day__lte=through).filter(Q(invoice=invoice))
    credit = qs.filter(credit=A.DEFERRED).aggregate(s=Sum("amount"))["s"] or ZERO
    debit = qs.filter(debit=A.DEFERRED).aggregate(s=Sum("amount"))["s"] or ZERO
    return credit - debit
