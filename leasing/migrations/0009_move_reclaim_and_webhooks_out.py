"""Reclaim decisions and tenant webhooks leave leasing for their own apps (`reclaim`, `webhooks`).

State only: the tables stay where they are here, and the new apps' first migrations take them
over (renaming them there); nothing is dropped or copied.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("leasing", "0008_listing_event"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="webhookdelivery",
                    name="endpoint",
                ),
                migrations.RemoveField(
                    model_name="webhookendpoint",
                    name="tenant",
                ),
                migrations.DeleteModel(
                    name="ReclaimDecision",
                ),
                migrations.DeleteModel(
                    name="WebhookDelivery",
                ),
                migrations.DeleteModel(
                    name="WebhookEndpoint",
                ),
            ],
            database_operations=[],
        ),
    ]
