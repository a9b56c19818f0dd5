"""The database refuses tampering with billing, on PostgreSQL and on SQLite alike.

Replaces the PostgreSQL-only triggers of 0002 by guards installed on both engines, whatever
writes (the ORM, raw SQL, the admin, a shell). A document is *issued* once it is no longer a
draft (issued, paid or void). The database refuses:

* changes to the columns of `INVOICE_FROZEN` and `CREDIT_NOTE_FROZEN` of an issued document,
  and deleting it;
* status moves outside `INVOICE_MOVES` and `CREDIT_NOTE_MOVES` (backwards, sideways, or
  skipping a step) — the one table of moves, rendered into both engines' triggers;
* on an issued invoice: `paid_at` set other than by the move into PAID, `voided_at` and
  `void_reason` other than by the move into VOID, the overdue flag of a paid or void invoice
  changed, its billing run replaced (a deleted run may only unlink it: ON DELETE SET NULL);
* voiding an invoice that has issued credit notes (the tenant would be refunded twice), and
  a credit note issued against a draft or void invoice. On PostgreSQL the credit note's check
  takes a share lock on its invoice, so a void and a credit racing each other cannot both
  commit;
* inserts, updates and deletes of the lines of a document that is not a draft;
* number-series edits other than the issuing step (billing's series per kind and year and
  leasing's lease numbers per year, the same kind of counter): a delete, a change of kind or
  year, a `last_value` that goes down, a new series that does not start at 0;
* TRUNCATE of any of these tables (PostgreSQL; SQLite has none, and its `DELETE FROM` fires
  the row guards).

Columns not listed (added later, or free by design: `is_overdue` while issued) may change: the
lists say what must not, so a new column is never refused by accident.

Each guard first asks `landlord_maintenance()` — the one explicit bypass, used by the test
runner's `flush` (common/tamper.py). Refusals are SQLSTATE 23001 (restrict_violation) on
PostgreSQL and RAISE(ABORT) on SQLite; Django raises IntegrityError for both.

SQLite rebuilds a table for most schema changes, dropping its triggers, and refuses to rename
the rebuilt table while a trigger of another table names it ("error in trigger ...: no such
table"). A later migration that alters one of these tables lifts the SQLite guards around
the change:

    guards = importlib.import_module("billing.migrations.0005_tamper_proof")
    operations = [
        guards.RunSQLOn("sqlite", guards.SQLITE_DROP, guards.SQLITE_CREATE),
        migrations.AddField(...),
        guards.RunSQLOn("sqlite", guards.SQLITE_CREATE, guards.SQLITE_DROP),
    ]

tests/billing/test_tamper.py checks that every guard is in place on both engines. A new
status needs a migration that installs the guards again from an extended table of moves.
"""

import importlib

from django.db import migrations

# The allowed status moves: extend these (in a new migration) when a status is added.
INVOICE_MOVES = (("draft", "issued"), ("issued", "paid"), ("issued", "void"))
CREDIT_NOTE_MOVES = (("draft", "issued"),)
# An invoice in these statuses is settled: its overdue flag no longer moves.
INVOICE_SETTLED = ("paid", "void")
# Invoices against which no credit note may be issued.
INVOICE_NOT_CREDITABLE = ("draft", "void")

INVOICE_FROZEN = (
    "id",
    "number",
    "tenant_id",
    "lease_id",
    "kind",
    "period",
    "period_start",
    "period_end",
    "currency",
    "total",
    "issued_at",
    "due_at",
    "created_at",
    "supplements_id",
    "cause",
    "issued_by_id",
)
CREDIT_NOTE_FROZEN = (
    "id",
    "number",
    "tenant_id",
    "lease_id",
    "invoice_id",
    "currency",
    "total",
    "reason",
    "issued_at",
    "created_at",
    "issued_by_id",
)
# Number series: table -> the columns that name the series.
SERIES = {
    "billing_numberseries": ("kind", "year"),
    "leasing_leasenumberseries": ("year",),
}
TRUNCATE_GUARDED = (
    "billing_invoice",
    "billing_invoiceline",
    "billing_creditnote",
    "billing_creditnoteline",
    *SERIES,
)

# --- the rules, written once for both engines ----------------------------------------------
# A rule is (condition, message): the write is refused when the condition is true. In a
# condition, {ne} is the null-safe "differs" of the engine and {lock} the share lock a read of
# another row takes on PostgreSQL (none on SQLite, which has one writer at a time).


def _pairs(moves):
    return ", ".join(f"('{a}', '{b}')" for a, b in moves)


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def _moves(label, moves):
    return (
        "NEW.status {ne} OLD.status"
        f" AND (OLD.status, NEW.status) NOT IN (VALUES {_pairs(moves)})",
        f"{label}: this status move is not allowed",
    )


def _frozen(label, columns):
    return [
        (
            f"OLD.status <> 'draft' AND NEW.{c} {{ne}} OLD.{c}",
            f"{label}: {c} is immutable once issued",
        )
        for c in columns
    ]


def _parent_not_draft(row, fk, parent):
    return f"(SELECT status FROM {parent} WHERE id = {row}.{fk}) <> 'draft'"


INVOICE = {
    "UPDATE": [
        _moves("invoice", INVOICE_MOVES),
        *_frozen("invoice", INVOICE_FROZEN),
        (
            "OLD.status <> 'draft'"
            " AND (NEW.paid_at {ne} OLD.paid_at OR NEW.paid_by_id {ne} OLD.paid_by_id)"
            " AND NOT (NEW.status = 'paid' AND OLD.status <> 'paid')",
            "invoice: paid_at and paid_by are set only by the move into paid",
        ),
        (
            "OLD.status <> 'draft'"
            " AND (NEW.voided_at {ne} OLD.voided_at OR NEW.void_reason {ne} OLD.void_reason"
            " OR NEW.void_resolution {ne} OLD.void_resolution"
            " OR NEW.voided_by_id {ne} OLD.voided_by_id)"
            " AND NOT (NEW.status = 'void' AND OLD.status <> 'void')",
            "invoice: voided_at, void_reason, void_resolution and voided_by are set only by the move"
            " into void",
        ),
        (
            f"OLD.status IN ({_in(INVOICE_SETTLED)}) AND NEW.is_overdue {{ne}} OLD.is_overdue",
            "invoice: the overdue flag of a paid or void invoice is immutable",
        ),
        (
            "OLD.status <> 'draft' AND NEW.billing_run_id {ne} OLD.billing_run_id"
            " AND NEW.billing_run_id IS NOT NULL",
            "invoice: the billing run of an issued invoice may only be cleared",
        ),
        (
            "NEW.status = 'void' AND OLD.status <> 'void' AND EXISTS (SELECT 1 FROM"
            " billing_creditnote WHERE invoice_id = OLD.id AND status <> 'draft')",
            "invoice: an invoice with issued credit notes cannot be voided",
        ),
    ],
    "DELETE": [("OLD.status <> 'draft'", "invoice: an issued invoice cannot be deleted")],
}

_NOT_CREDITABLE = (
    "(SELECT status FROM billing_invoice WHERE id = NEW.invoice_id{lock})"
    f" IN ({_in(INVOICE_NOT_CREDITABLE)})"
)
_CREDIT_AGAINST = "credit note: a credit note for a draft or void invoice cannot be issued"
CREDIT_NOTE = {
    "INSERT": [(f"NEW.status <> 'draft' AND {_NOT_CREDITABLE}", _CREDIT_AGAINST)],
    "UPDATE": [
        _moves("credit note", CREDIT_NOTE_MOVES),
        *_frozen("credit note", CREDIT_NOTE_FROZEN),
        (
            "OLD.status <> 'draft' AND NEW.billing_run_id {ne} OLD.billing_run_id"
            " AND NEW.billing_run_id IS NOT NULL",
            "credit note: the billing run of an issued credit note may only be cleared",
        ),
        (f"OLD.status = 'draft' AND NEW.status <> 'draft' AND {_NOT_CREDITABLE}", _CREDIT_AGAINST),
    ],
    "DELETE": [("OLD.status <> 'draft'", "credit note: an issued credit note cannot be deleted")],
}


def _lines(label, fk, parent):
    message = f"{label} line: lines of an issued {label} are immutable"
    return {
        "INSERT": [(_parent_not_draft("NEW", fk, parent), message)],
        "UPDATE": [
            (_parent_not_draft("OLD", fk, parent), message),
            (_parent_not_draft("NEW", fk, parent), message),
        ],
        "DELETE": [(_parent_not_draft("OLD", fk, parent), message)],
    }


def _series(key):
    return {
        "INSERT": [("NEW.last_value <> 0", "number series: a new series starts at 0")],
        "UPDATE": [
            *[
                (f"NEW.{c} {{ne}} OLD.{c}", f"number series: {c} is immutable")
                for c in ("id", *key)
            ],
            ("NEW.last_value < OLD.last_value", "number series: last_value never goes down"),
        ],
        "DELETE": [("1 = 1", "number series: a number series cannot be deleted")],
    }


GUARDS = {
    "billing_invoice": INVOICE,
    "billing_invoiceline": _lines("invoice", "invoice_id", "billing_invoice"),
    "billing_creditnote": CREDIT_NOTE,
    "billing_creditnoteline": _lines("credit note", "credit_note_id", "billing_creditnote"),
    **{table: _series(key) for table, key in SERIES.items()},
}
TRUNCATE_MESSAGE = "TRUNCATE is refused: issued documents and number series are kept"

for _events in GUARDS.values():
    for _rules in _events.values():
        assert all("'" not in message for _, message in _rules), "messages are SQL literals"

# --- PostgreSQL -------------------------------------------------------------------------------
_PG = {"ne": "IS DISTINCT FROM", "lock": " FOR SHARE"}


def _pg_function(table, events):
    branches = []
    for event, rules in events.items():
        row = "NEW" if event == "INSERT" else "OLD"  # the row the detail names
        checks = "".join(
            f"""
        IF {condition.format(**_PG)} THEN
            RAISE EXCEPTION USING MESSAGE = '{message}', ERRCODE = 'restrict_violation',
                DETAIL = format('%s id %s', TG_TABLE_NAME, {row}.id);
        END IF;"""
            for condition, message in rules
        )
        branches.append(
            f"""
    IF TG_OP = '{event}' THEN{checks}
        RETURN {"OLD" if event == "DELETE" else "NEW"};
    END IF;"""
        )
    return f"""
CREATE FUNCTION {table}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF landlord_maintenance() THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;{"".join(branches)}
    RETURN NULL;
END;
$$;
CREATE TRIGGER {table}_guard BEFORE {" OR ".join(events)} ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_guard();
"""


PG_MAINTENANCE = """
CREATE FUNCTION landlord_maintenance() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('landlord.maintenance', true), '') = 'on'
$$;
"""
PG_TRUNCATE = f"""
CREATE FUNCTION landlord_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT landlord_maintenance() THEN
        RAISE EXCEPTION USING MESSAGE = '{TRUNCATE_MESSAGE}', ERRCODE = 'restrict_violation',
            DETAIL = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$;
""" + "".join(
    f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}\n"
    "    FOR EACH STATEMENT EXECUTE FUNCTION landlord_refuse_truncate();\n"
    for table in TRUNCATE_GUARDED
)
PG_CREATE = [
    PG_MAINTENANCE,
    *[_pg_function(table, events) for table, events in GUARDS.items()],
    PG_TRUNCATE,
]
PG_DROP = [
    *[f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t};" for t in TRUNCATE_GUARDED],
    "DROP FUNCTION IF EXISTS landlord_refuse_truncate();",
    *[
        f"DROP TRIGGER IF EXISTS {t}_guard ON {t}; DROP FUNCTION IF EXISTS {t}_guard();"
        for t in GUARDS
    ],
    "DROP FUNCTION IF EXISTS landlord_maintenance();",
]

# --- SQLite ---------------------------------------------------------------------------------
_SQLITE = {"ne": "IS NOT", "lock": ""}


def _sqlite_trigger(table, event, rules):
    checks = "".join(
        f"\n    SELECT RAISE(ABORT, '{message}') WHERE {condition.format(**_SQLITE)};"
        for condition, message in rules
    )
    return (
        f"CREATE TRIGGER {table}_guard_{event.lower()} BEFORE {event} ON {table}\n"
        f"FOR EACH ROW WHEN NOT landlord_maintenance()\nBEGIN{checks}\nEND;"
    )


SQLITE_TRIGGERS = [
    (f"{table}_guard_{event.lower()}", _sqlite_trigger(table, event, rules))
    for table, events in GUARDS.items()
    for event, rules in events.items()
]
SQLITE_CREATE = [sql for _, sql in SQLITE_TRIGGERS]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name};" for name, _ in SQLITE_TRIGGERS]


class RunSQLOn(migrations.RunSQL):
    """RunSQL for one database vendor; a no-op on the others."""

    def __init__(self, vendor, sql, reverse_sql, **kwargs):
        super().__init__(sql, reverse_sql, **kwargs)
        self.vendor = vendor

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, [self.vendor, *args], kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"Raw SQL operation on {self.vendor}"


# 0002's PostgreSQL triggers: dropped here, restored when this migration is reversed.
_IMMUTABLE_0002 = importlib.import_module("billing.migrations.0002_issued_documents_immutable")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_supplementary_and_void_resolution"),
        ("leasing", "0003_lease_number_series"),
    ]

    operations = [
        RunSQLOn(
            "postgresql",
            [_IMMUTABLE_0002.BACKWARD, *PG_CREATE],
            [*PG_DROP, _IMMUTABLE_0002.FORWARD],
            elidable=False,
        ),
        RunSQLOn("sqlite", SQLITE_CREATE, SQLITE_DROP, elidable=False),
    ]
