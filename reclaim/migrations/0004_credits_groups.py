"""Availability reports join the operator roles (docs/rules/roles.md, docs/rules/fleet.md).

finance, viewer: read them (the reports are written by the service-credits job only).

Frozen like 0002: a model added later joins a role by a migration of its own.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "finance": [("billing", "availabilityreport", ("view",))],
    "viewer": [("billing", "availabilityreport", ("view",))],
}


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alias = schema_editor.connection.alias
    config = apps.get_app_config("billing")
    config.models_module = True
    create_permissions(config, verbosity=0, using=alias, apps=apps)
    for name, grants in GRANTS.items():
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
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.using(schema_editor.connection.alias).filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="billing", codename="view_availabilityreport"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_credits_kinds_and_availability"),
        ("reclaim", "0003_fleet_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
