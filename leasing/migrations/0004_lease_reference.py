"""A deal reference on leases, unique when set (operator deals, idempotent demo data)."""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("leasing", "0003_lease_number_series")]

    operations = [
        migrations.AddField(
            model_name="lease",
            name="reference",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The operator's deal reference; unique when set (also keys the demo data).",
                max_length=64,
            ),
        ),
        migrations.AddConstraint(
            model_name="lease",
            constraint=models.UniqueConstraint(
                condition=~Q(reference=""), fields=("reference",), name="lease_reference_unique"
            ),
        ),
    ]
