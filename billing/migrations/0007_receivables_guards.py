"""The database refuses tampering with receivables and the ledger; invoices gain PARTIALLY_PAID.

Reinstalls the invoice guard of 0005 (recipe in its docstring) from the extended table of
moves: ISSUED ⇄ PARTIALLY_PAID ⇄ PAID follow the balance both ways (a reversed payment moves an
invoice back), and `paid_at` / `paid_by` may now also be cleared by a move out of PAID. Every
other invoice rule is 0005's, unchanged.

Payments, their reversals, applications, refunds and ledger postings are append-only: the
database refuses any UPDATE or DELETE (and TRUNCATE on PostgreSQL), on both engines, with the
same maintenance bypass (common/tamper.py). Revenue schedules are the recognition job's cursor
and stay writable.
"""

import importlib

from django.db import migrations

G = importlib.import_module("billing.migrations.0005_tamper_proof")

INVOICE_MOVES = (
    ("draft", "issued"),
    ("issued", "partially_paid"),
    ("issued", "paid"),
    ("partially_paid", "paid"),
    ("partially_paid", "issued"),
    ("paid", "partially_paid"),
    ("paid", "issued"),
    ("issued", "void"),
)
CREDIT_NOTE_MOVES = G.CREDIT_NOTE_MOVES

_PAID_RULE = (
    "OLD.status <> 'draft'"
    " AND (NEW.paid_at {ne} OLD.paid_at OR NEW.paid_by_id {ne} OLD.paid_by_id)"
    " AND NOT (NEW.status = 'paid' AND OLD.status <> 'paid')"
    " AND NOT (OLD.status = 'paid' AND NEW.status <> 'paid'"
    " AND NEW.paid_at IS NULL AND NEW.paid_by_id IS NULL)",
    "invoice: paid_at and paid_by are set only by the move into paid, cleared by a move out",
)


def _invoice_rules():
    rules = []
    for condition, message in G.INVOICE["UPDATE"]:
        if message.endswith("this status move is not allowed"):
            rules.append(G._moves("invoice", INVOICE_MOVES))
        elif message.startswith("invoice: paid_at and paid_by"):
            rules.append(_PAID_RULE)
        else:
            rules.append((condition, message))
    return {"UPDATE": rules, "DELETE": G.INVOICE["DELETE"]}


INVOICE = _invoice_rules()


def _append_only(label):
    message = f"{label}: recorded rows are never changed or deleted"
    return {"UPDATE": [("1 = 1", message)], "DELETE": [("1 = 1", message)]}


APPEND_ONLY = {
    "billing_payment": "payment",
    "billing_paymentreversal": "payment reversal",
    "billing_application": "application",
    "billing_refund": "refund",
    "billing_posting": "ledger posting",
}
NEW_GUARDS = {table: _append_only(label) for table, label in APPEND_ONLY.items()}
# Every guard in place after this migration (tests/billing/test_receivables_tamper.py).
GUARDS = {**G.GUARDS, "billing_invoice": INVOICE, **NEW_GUARDS}
TRUNCATE_GUARDED = (*G.TRUNCATE_GUARDED, *APPEND_ONLY)


def _sqlite(guards):
    return [
        (f"{table}_guard_{event.lower()}", G._sqlite_trigger(table, event, rules))
        for table, events in guards.items()
        for event, rules in events.items()
    ]


SQLITE_TRIGGERS = _sqlite(GUARDS)
_OLD_INVOICE_SQLITE = _sqlite({"billing_invoice": G.INVOICE})
_NEW_INVOICE_SQLITE = _sqlite({"billing_invoice": INVOICE})
_NEW_TABLES_SQLITE = _sqlite(NEW_GUARDS)


def _drop_sqlite(triggers):
    return [f"DROP TRIGGER IF EXISTS {name};" for name, _ in triggers]


_DROP_PG_INVOICE = (
    "DROP TRIGGER IF EXISTS billing_invoice_guard ON billing_invoice;"
    " DROP FUNCTION IF EXISTS billing_invoice_guard();"
)
PG_FORWARD = [
    _DROP_PG_INVOICE,
    G._pg_function("billing_invoice", INVOICE),
    *[G._pg_function(table, events) for table, events in NEW_GUARDS.items()],
    *[
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}\n"
        "    FOR EACH STATEMENT EXECUTE FUNCTION landlord_refuse_truncate();"
        for table in APPEND_ONLY
    ],
]
PG_BACKWARD = [
    *[f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t};" for t in APPEND_ONLY],
    *[
        f"DROP TRIGGER IF EXISTS {t}_guard ON {t}; DROP FUNCTION IF EXISTS {t}_guard();"
        for t in APPEND_ONLY
    ],
    _DROP_PG_INVOICE,
    G._pg_function("billing_invoice", G.INVOICE),
]
SQLITE_FORWARD = [
    *_drop_sqlite(_OLD_INVOICE_SQLITE),
    *[sql for _, sql in _NEW_INVOICE_SQLITE],
    *[sql for _, sql in _NEW_TABLES_SQLITE],
]
SQLITE_BACKWARD = [
    *_drop_sqlite(_NEW_TABLES_SQLITE),
    *_drop_sqlite(_NEW_INVOICE_SQLITE),
    *[sql for _, sql in _OLD_INVOICE_SQLITE],
]


class Migration(migrations.Migration):
    dependencies = [("billing", "0006_receivables_and_ledger")]

    operations = [
        G.RunSQLOn("postgresql", PG_FORWARD, PG_BACKWARD, elidable=False),
        G.RunSQLOn("sqlite", SQLITE_FORWARD, SQLITE_BACKWARD, elidable=False),
    ]
