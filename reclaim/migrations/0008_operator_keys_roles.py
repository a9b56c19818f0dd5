"""Operator API keys join the roles (docs/rules/roles.md): `viewer` reads them (the prefix,
the user, when used; never the secret). No group creates them: a key acts as its user, so
superusers only, like the tenants' API keys.

Frozen like 0002: a model added later joins a role by a migration of its own.
"""

from importlib import import_module

from django.db import migrations

roles = import_module("reclaim.migrations.0003_fleet_groups")

GRANTS = {"viewer": [("common", "operatorkey", ("view",))]}
NEW = {"common": ("operatorkey",)}


def grant(apps, schema_editor):
    roles.add_grants(apps, schema_editor, NEW, GRANTS)


def revoke(apps, schema_editor):
    roles.remove_grants(apps, schema_editor, NEW, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0002_operator_keys"),
        ("reclaim", "0007_credits_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
