"""The performance model's calibrations join the operator roles (docs/rules/roles.md).

capacity records calibrations (`manage.py calibrate`, the inventory's measured links and
clusters); planner and viewer read them. Same mechanism as 0003.
"""

from importlib import import_module

from django.db import migrations

roles = import_module("reclaim.migrations.0003_fleet_groups")

NEW = {"clusters": ("linkcalibration", "clustercalibration")}
GRANTS = {
    "capacity": [("clusters", model, ("add", "view")) for model in NEW["clusters"]],
    "planner": [("clusters", model, ("view",)) for model in NEW["clusters"]],
    "viewer": [("clusters", model, ("view",)) for model in NEW["clusters"]],
}


def grant(apps, schema_editor):
    roles.add_grants(apps, schema_editor, NEW, GRANTS)


def revoke(apps, schema_editor):
    roles.remove_grants(apps, schema_editor, NEW, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0006_calibration"),
        ("reclaim", "0004_decision_uncertainty"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
