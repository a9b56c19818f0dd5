"""Invoices and credit notes carry the PO number they were issued with.

`po_number` is added blank on both tables (a constant default: on PostgreSQL a change of the
catalogue only, no rewrite of the tables and no long lock on a populated database). The
issued rows are filled from their lease by 0011, in batches; 0012 then freezes the column
on issued documents. The SQLite guards are lifted around the table rebuilds (the recipe in
the docstring of 0005, with the guards as 0009 left them).
"""

import importlib

from django.db import migrations, models

guards = importlib.import_module("billing.migrations.0005_tamper_proof")
credits = importlib.import_module("billing.migrations.0009_credits_kinds_and_availability")


def po_number():
    return models.CharField(
        blank=True,
        db_default="",
        default="",
        help_text="The lease's purchase order number as it stood when this was issued (frozen "
        "with the document).",
        max_length=64,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_credits_kinds_and_availability"),
        ("leasing", "0012_lease_po_number"),
    ]

    operations = [
        guards.RunSQLOn("sqlite", credits.SQLITE_DROP, credits.SQLITE_CREATE, elidable=False),
        migrations.AddField(model_name="invoice", name="po_number", field=po_number()),
        migrations.AddField(model_name="creditnote", name="po_number", field=po_number()),
        guards.RunSQLOn("sqlite", credits.SQLITE_CREATE, credits.SQLITE_DROP, elidable=False),
    ]
