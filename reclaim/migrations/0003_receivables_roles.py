"""Receivables join the roles (docs/rules/roles.md): `finance` records and reverses payments
and refunds, keeps the tenants' billing contacts, and reads applications, the ledger,
recognition runs and reminders; `viewer` reads them all.
Frozen like 0002: the permissions are listed, not computed."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

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


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alias = schema_editor.connection.alias
    config = apps.get_app_config("billing")
    config.models_module = True
    create_permissions(config, verbosity=0, using=alias, apps=apps)
    for name, grants in (("finance", FINANCE), ("viewer", VIEWER)):
        group, _ = Group.objects.using(alias).get_or_create(name=name)
        group.permissions.add(
            *(
                Permission.objects.using(alias).get(
                    content_type__app_label=label, codename=f"{action}_{model}"
                )
                for label, model, actions in grants
                for action in actions
            )
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alias = schema_editor.connection.alias
    for name, grants in (("finance", FINANCE), ("viewer", VIEWER)):
        group = Group.objects.using(alias).filter(name=name).first()
        if group is None:
            continue
        group.permissions.remove(
            *Permission.objects.using(alias).filter(
                content_type__app_label="billing",
                codename__in=[f"{a}_{m}" for _, m, actions in grants for a in actions],
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("reclaim", "0002_operator_groups"),
        ("billing", "0008_dunning_contacts_and_reminders"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
