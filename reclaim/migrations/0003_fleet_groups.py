"""The fleet models join the operator roles (docs/rules/roles.md, docs/rules/fleet.md).

capacity: incidents, maintenance windows, acceptance records, replacements, deferral answers;
          monitoring sources are read and revoked (creating one is for superusers, like API
          keys); health events are read only (monitoring writes them).
planner:  reads them all.
viewer:   every view permission of the new models.

Frozen like 0002: a model added later joins a role by a migration of its own.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = ("add", "change", "delete", "view")
NEW = {
    "clusters": ("incident", "maintenancewindow", "monitoringsource", "healthevent"),
    "leasing": ("acceptancerecord", "replacement", "maintenancedeferral"),
}
GRANTS = {
    "capacity": [
        ("clusters", "incident", ("add", "change", "view")),
        ("clusters", "maintenancewindow", ALL),
        ("clusters", "monitoringsource", ("view", "change")),
        ("clusters", "healthevent", ("view",)),
        ("leasing", "acceptancerecord", ("add", "view")),
        ("leasing", "replacement", ("add", "view")),
        ("leasing", "maintenancedeferral", ("view", "change")),
    ],
    "planner": [(label, model, ("view",)) for label, models in NEW.items() for model in models],
    "viewer": [(label, model, ("view",)) for label, models in NEW.items() for model in models],
}


def add_grants(apps, schema_editor, new, grants):
    """Give each group its `grants` over the models `new` ({app: models}); idempotent. Later
    role migrations call this with their own models."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alias = schema_editor.connection.alias
    for label in new:
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, verbosity=0, using=alias, apps=apps)
    for name, pairs in grants.items():
        group, _ = Group.objects.using(alias).get_or_create(name=name)
        group.permissions.add(
            *(
                Permission.objects.using(alias).get(
                    content_type__app_label=label, codename=f"{action}_{model}"
                )
                for label, model, actions in pairs
                for action in actions
            )
        )


def remove_grants(apps, schema_editor, new, grants):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    alias = schema_editor.connection.alias
    for group in Group.objects.using(alias).filter(name__in=grants):
        group.permissions.remove(
            *Permission.objects.using(alias).filter(
                content_type__app_label__in=list(new),
                content_type__model__in=[m for models in new.values() for m in models],
            )
        )


def grant(apps, schema_editor):
    add_grants(apps, schema_editor, NEW, GRANTS)


def revoke(apps, schema_editor):
    remove_grants(apps, schema_editor, NEW, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0003_fleet"),
        ("leasing", "0010_fleet"),
        ("reclaim", "0002_operator_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
