"""Credit notes carry a kind and, for a service credit, its month; availability reports.

* `CreditNote.kind` (early_end, holdover, delivery, service, cancellation): existing notes
  become `holdover` when they credit a holdover invoice and `early_end` otherwise (every
  credit note so far corrected an end, or a holdover release).
* `CreditNote.period`: a service credit's month; one service credit per lease and month
  (unique constraint `creditnote_service_once_per_month`).
* `AvailabilityReport`: one per lease and closed month, with the figures and the report.

The tamper guards (0005, as 0007 extended them) are lifted on SQLite around the table rebuild,
and installed again on both engines with `kind` and `period` among the frozen columns of an
issued credit note (the recipe in the docstring of 0005).
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

guards = importlib.import_module("billing.migrations.0005_tamper_proof")
# The guards as receivables left them (the invoice's moves include PARTIALLY_PAID).
receivables = importlib.import_module("billing.migrations.0007_receivables_guards")

CREDIT_NOTE_FROZEN = (*guards.CREDIT_NOTE_FROZEN, "kind", "period")
CREDIT_NOTE = {
    **guards.CREDIT_NOTE,
    "UPDATE": [
        *guards.CREDIT_NOTE["UPDATE"],
        *guards._frozen("credit note", ("kind", "period")),
    ],
}
# The tables of 0005's guards, whose SQLite triggers are lifted around the rebuild: as 0007
# left them, the credit note's with `kind` and `period` frozen too.
BEFORE = {table: receivables.GUARDS[table] for table in guards.GUARDS}
GUARDS = {**BEFORE, "billing_creditnote": CREDIT_NOTE}
PG_DROP_CREDIT_NOTE = (
    "DROP TRIGGER IF EXISTS billing_creditnote_guard ON billing_creditnote;"
    " DROP FUNCTION IF EXISTS billing_creditnote_guard();"
)
PG_OLD = guards._pg_function("billing_creditnote", guards.CREDIT_NOTE)
PG_NEW = guards._pg_function("billing_creditnote", CREDIT_NOTE)
SQLITE_TRIGGERS = [
    (f"{table}_guard_{event.lower()}", guards._sqlite_trigger(table, event, rules))
    for table, events in GUARDS.items()
    for event, rules in events.items()
]
SQLITE_CREATE = [sql for _, sql in SQLITE_TRIGGERS]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name};" for name, _ in SQLITE_TRIGGERS]
SQLITE_BEFORE = [sql for _, sql in receivables._sqlite(BEFORE)]


def kinds_of_existing_notes(apps, schema_editor):
    """Notes crediting a holdover invoice are `holdover`; the rest keep `early_end`. Runs
    before the guards freeze `kind` (0005 lists only the columns it knew)."""
    CreditNote = apps.get_model("billing", "CreditNote")
    CreditNote.objects.filter(invoice__kind="holdover").update(kind="holdover")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_dunning_contacts_and_reminders"),
        ("leasing", "0010_fleet"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        guards.RunSQLOn("sqlite", SQLITE_DROP, SQLITE_BEFORE, elidable=False),
        migrations.CreateModel(
            name="AvailabilityReport",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period", models.DateField(help_text="First day of the calendar month.")),
                ("period_start", models.DateTimeField()),
                ("period_end", models.DateTimeField()),
                ("computed_at", models.DateTimeField()),
                (
                    "in_service_us",
                    models.BigIntegerField(help_text="In-service node-time, microseconds."),
                ),
                (
                    "downtime_us",
                    models.BigIntegerField(help_text="Downtime node-time, microseconds."),
                ),
                ("credit", models.DecimalField(decimal_places=2, default=0, max_digits=18)),
                ("currency", models.CharField(default="USD", max_length=3)),
                ("report", models.JSONField(default=dict)),
            ],
            options={
                "ordering": ["-period", "lease_id"],
            },
        ),
        migrations.AddField(
            model_name="creditnote",
            name="kind",
            field=models.CharField(
                choices=[
                    ("early_end", "Early end"),
                    ("holdover", "Holdover"),
                    ("delivery", "Delivery"),
                    ("service", "Service credit"),
                    ("cancellation", "Late-delivery cancellation"),
                ],
                db_default="early_end",
                default="early_end",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="creditnote",
            name="period",
            field=models.DateField(
                blank=True,
                help_text="A service credit's month (first day): whose availability it credits.",
                null=True,
            ),
        ),
        migrations.RunPython(kinds_of_existing_notes, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "service")),
                fields=("lease", "period"),
                name="creditnote_service_once_per_month",
            ),
        ),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "service"), _negated=True),
                    ("period__isnull", False),
                    _connector="OR",
                ),
                name="creditnote_service_has_period",
            ),
        ),
        migrations.AddField(
            model_name="availabilityreport",
            name="billing_run",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="billing.billingrun",
            ),
        ),
        migrations.AddField(
            model_name="availabilityreport",
            name="credit_note",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="availability_report",
                to="billing.creditnote",
            ),
        ),
        migrations.AddField(
            model_name="availabilityreport",
            name="lease",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="availability_reports",
                to="leasing.lease",
            ),
        ),
        migrations.AddField(
            model_name="availabilityreport",
            name="tenant",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="leasing.tenant"
            ),
        ),
        migrations.AddConstraint(
            model_name="availabilityreport",
            constraint=models.UniqueConstraint(
                fields=("lease", "period"), name="availability_once_per_month"
            ),
        ),
        migrations.AddConstraint(
            model_name="availabilityreport",
            constraint=models.CheckConstraint(
                condition=models.Q(("credit__gte", 0)), name="availability_credit_nonneg"
            ),
        ),
        migrations.AddConstraint(
            model_name="availabilityreport",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("downtime_us__gte", 0), ("downtime_us__lte", models.F("in_service_us"))
                ),
                name="availability_downtime_within_service",
            ),
        ),
        guards.RunSQLOn("sqlite", SQLITE_CREATE, SQLITE_DROP, elidable=False),
        guards.RunSQLOn(
            "postgresql",
            [PG_DROP_CREDIT_NOTE, PG_NEW],
            [PG_DROP_CREDIT_NOTE, PG_OLD],
            elidable=False,
        ),
    ]
