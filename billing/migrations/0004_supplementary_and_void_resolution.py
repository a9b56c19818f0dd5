"""Supplementary invoices, void resolutions and the actors of operator writes.

* `Invoice.kind` gains SUPPLEMENTARY; `supplements` (the month's rent invoice) and `cause`
  (what the supplement bills for) describe one.
* `Invoice.void_resolution` says what follows a void: `reissue` (the next run bills the slot
  again) or `waive` (never billed again). Invoices voided before this migration were never
  billed again, so they are recorded as waived.
* The one-invoice-per-month constraint now counts only the rows that hold the slot (all but a
  void resolved `reissue`), and supplementary invoices get their own slot per cause.
* `issued_by`, `paid_by`, `voided_by` (invoices) and `issued_by` (credit notes): who did it,
  null for the scheduler. Not indexed (the billing run pays for every index on its
  thousands of inserts and updates); `supplements` has a partial index (supplementary rows).

Safe on a populated PostgreSQL database: the new text columns have a database default (no
table rewrite), the foreign keys are nullable, and the existing rows satisfy every new
constraint once legacy voids are marked waived (done before the constraints are added). The
immutability trigger of 0002 does not look at the new columns, so it needs no change.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

HOLDS_SLOT = models.Q(("status", "void"), ("void_resolution", "reissue"), _negated=True)


def legacy_voids_are_waived(apps, schema_editor):
    invoice = apps.get_model("billing", "Invoice")
    invoice.objects.filter(status="void", void_resolution="").update(void_resolution="waive")


def actor(help_text):
    return models.ForeignKey(
        blank=True,
        db_index=False,
        help_text=f"{help_text} (empty: the billing scheduler).",
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        related_name="+",
        to=settings.AUTH_USER_MODEL,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_tenant_page_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="kind",
            field=models.CharField(
                choices=[
                    ("rent", "Rent"),
                    ("holdover", "Holdover"),
                    ("supplementary", "Supplementary rent"),
                ],
                default="rent",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="supplements",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The month's rent invoice this supplementary invoice adds to.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="supplementary_invoices",
                to="billing.invoice",
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="cause",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="What a supplementary invoice bills for, e.g. "
                "notice_withdrawn:<notice id>.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="void_resolution",
            field=models.CharField(
                blank=True,
                choices=[
                    ("reissue", "Re-issue on the next billing run"),
                    ("waive", "Waive (never billed again)"),
                ],
                db_default="",
                default="",
                max_length=8,
            ),
        ),
        migrations.AddField(model_name="invoice", name="issued_by", field=actor("Who issued it")),
        migrations.AddField(
            model_name="invoice", name="paid_by", field=actor("Who marked it paid")
        ),
        migrations.AddField(model_name="invoice", name="voided_by", field=actor("Who voided it")),
        migrations.AddField(
            model_name="creditnote", name="issued_by", field=actor("Who issued it")
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("supplements__isnull", False)),
                fields=["supplements"],
                name="invoice_supplements",
            ),
        ),
        migrations.RunPython(legacy_voids_are_waived, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name="invoice",
            name="invoice_one_per_lease_period",
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.UniqueConstraint(
                condition=models.Q(models.Q(("kind", "supplementary"), _negated=True), HOLDS_SLOT),
                fields=("lease", "kind", "period"),
                name="invoice_one_per_lease_period",
            ),
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "supplementary"), HOLDS_SLOT),
                fields=("lease", "period", "cause"),
                name="invoice_supplement_once_per_cause",
            ),
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("kind", "supplementary"),
                        ("supplements__isnull", False),
                        models.Q(("cause", ""), _negated=True),
                    ),
                    models.Q(
                        models.Q(("kind", "supplementary"), _negated=True),
                        ("cause", ""),
                        ("supplements__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="invoice_supplement_has_original_and_cause",
            ),
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "void"), ("void_resolution__in", ["reissue", "waive"])),
                    models.Q(models.Q(("status", "void"), _negated=True), ("void_resolution", "")),
                    _connector="OR",
                ),
                name="invoice_void_has_resolution",
            ),
        ),
    ]
