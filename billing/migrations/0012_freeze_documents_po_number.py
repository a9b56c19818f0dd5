"""The PO number of an issued invoice or credit note is immutable.

Reinstalls the invoice guard (as 0007 left it) and the credit-note guard (as 0009 left it)
with `po_number` among the frozen columns, on both engines (the recipe in the docstring of
0005); every other rule is unchanged.
"""

import importlib

from django.db import migrations

G = importlib.import_module("billing.migrations.0005_tamper_proof")
receivables = importlib.import_module("billing.migrations.0007_receivables_guards")
credits = importlib.import_module("billing.migrations.0009_credits_kinds_and_availability")

FROZEN = ("po_number",)
INVOICE = {
    **receivables.INVOICE,
    "UPDATE": [*receivables.INVOICE["UPDATE"], *G._frozen("invoice", FROZEN)],
}
CREDIT_NOTE = {
    **credits.CREDIT_NOTE,
    "UPDATE": [*credits.CREDIT_NOTE["UPDATE"], *G._frozen("credit note", FROZEN)],
}
BEFORE = {"billing_invoice": receivables.INVOICE, "billing_creditnote": credits.CREDIT_NOTE}
AFTER = {"billing_invoice": INVOICE, "billing_creditnote": CREDIT_NOTE}
# Every guard in place after this migration.
GUARDS = {**credits.GUARDS, **AFTER}


def _pg(guards):
    return [
        f"DROP TRIGGER IF EXISTS {t}_guard ON {t}; DROP FUNCTION IF EXISTS {t}_guard();"
        + G._pg_function(t, events)
        for t, events in guards.items()
    ]


def _sqlite(guards):
    triggers = receivables._sqlite(guards)
    return [f"DROP TRIGGER IF EXISTS {name};" for name, _ in triggers], [
        sql for _, sql in triggers
    ]


_DROP_BEFORE, _CREATE_BEFORE = _sqlite(BEFORE)
_DROP_AFTER, _CREATE_AFTER = _sqlite(AFTER)


class Migration(migrations.Migration):
    dependencies = [("billing", "0011_fill_documents_po_number")]

    operations = [
        G.RunSQLOn("postgresql", _pg(AFTER), _pg(BEFORE), elidable=False),
        G.RunSQLOn(
            "sqlite",
            [*_DROP_BEFORE, *_CREATE_AFTER],
            [*_DROP_AFTER, *_CREATE_BEFORE],
            elidable=False,
        ),
    ]
