"""Availability reports join the operator roles (docs/rules/roles.md, docs/rules/fleet.md).

finance, viewer: read them (the reports are written by the service-credits job only).

Frozen like 0002: a model added later joins a role by a migration of its own.
"""

from importlib import import_module

from django.db import migrations

roles = import_module("reclaim.migrations.0003_fleet_groups")

GRANTS = {
    "finance": [("billing", "availabilityreport", ("view",))],
    "viewer": [("billing", "availabilityreport", ("view",))],
}


NEW = {"billing": ("availabilityreport",)}


def grant(apps, schema_editor):
    roles.add_grants(apps, schema_editor, NEW, GRANTS)


def revoke(apps, schema_editor):
    roles.remove_grants(apps, schema_editor, NEW, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_credits_kinds_and_availability"),
        ("reclaim", "0006_receivables_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
