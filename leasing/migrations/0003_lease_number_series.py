"""Lease numbers per year (`L-2026-0001`): one counter row per year, locked while a number is taken."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("leasing", "0002_allocation_no_overlap")]

    operations = [
        migrations.CreateModel(
            name="LeaseNumberSeries",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("year", models.PositiveSmallIntegerField(unique=True)),
                ("last_value", models.PositiveIntegerField(default=0)),
            ],
            options={"verbose_name_plural": "lease number series"},
        ),
    ]
