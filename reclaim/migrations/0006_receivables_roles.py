"""Receivables join the roles (docs/rules/roles.md): `finance` records and reverses payments
and refunds, keeps the tenants' billing contacts, and reads applications, the ledger,
recognition runs and reminders; `viewer` reads them all.
Frozen like 0002: the permissions are listed, not computed; granted as 0003 grants."""

from importlib import import_module

from django.db import migrations

roles = import_module("reclaim.migrations.0003_fleet_groups")

FINANCE = [
    ("billing", "payment", ("view", "add", "change")),
    ("billing", "paymentreversal", ("view",)),
    ("billing", "application", ("view",)),
    ("billing", "refund", ("view", "add")),
    ("billing", "posting", ("view",)),
    ("billing", "revenueschedule", ("view",)),
    ("billing", "recognitionrun", ("view",)),
    ("billing", "contact", ("view", "add", "change", "delete")),
    ("billing", "reminder", ("view",)),
]
VIEWER = [(label, model, ("view",)) for label, model, _ in FINANCE]


NEW = {"billing": tuple(model for _, model, _ in FINANCE)}
GRANTS = {"finance": FINANCE, "viewer": VIEWER}


def grant(apps, schema_editor):
    roles.add_grants(apps, schema_editor, NEW, GRANTS)


def revoke(apps, schema_editor):
    roles.remove_grants(apps, schema_editor, NEW, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("reclaim", "0005_calibration_groups"),
        ("billing", "0008_dunning_contacts_and_reminders"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
