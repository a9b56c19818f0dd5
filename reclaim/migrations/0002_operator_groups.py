"""The operator roles as Django groups (docs/rules/roles.md).

capacity: the inventory, tenants, listings, leases, notices (incl. node maintenance states).
finance:  invoices, credit notes, billing runs and number series; reads tenants and leases.
planner:  creates and scores reclaim decisions; reads the fleet and the leases. Approving a
          decision (`approve_reclaimdecision`) is granted apart, to named operators.
viewer:   every view permission of every app, nothing else.

Creating an API key acts as the tenant, so no group holds `add_apikey`: superusers only.

The permissions are listed here, frozen, not computed from the models of the day: a model
added later joins a role by a migration of its own. Lives in reclaim, the top of the app
layering, after the latest migration of each app whose permissions it hands out. Idempotent
(get_or_create, add) and reversible (the groups are removed).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = ("add", "change", "delete", "view")
APPS = ("common", "clusters", "leasing", "billing", "reclaim", "webhooks")

# role -> [(app_label, model_name, actions)]
ROLES = {
    "capacity": [
        *(
            ("clusters", model, ALL)
            for model in ("acceleratormodel", "site", "sitelink", "cluster", "node")
        ),
        *(
            ("leasing", model, ALL)
            for model in (
                "tenant",
                "tenantmembership",
                "listing",
                "lease",
                "leaseline",
                "allocation",
                "notice",
            )
        ),
        ("leasing", "leaseevent", ("view",)),
        ("leasing", "leasenumberseries", ("view",)),
        ("leasing", "apikey", ("view", "change")),  # revoke; creating one is for superusers
        ("webhooks", "webhookendpoint", ("view", "change")),
        ("webhooks", "webhookdelivery", ("view", "change")),
        # Failed domain-event deliveries are retried by operators (the retry records who).
        ("common", "domainevent", ("view",)),
        ("common", "eventdelivery", ("view", "change")),
    ],
    "finance": [
        *(
            ("billing", model, ALL)
            for model in (
                "invoice",
                "invoiceline",
                "creditnote",
                "creditnoteline",
                "billingrun",
                "numberseries",
            )
        ),
        *(("leasing", model, ("view",)) for model in ("tenant", "lease", "leaseline")),
    ],
    "planner": [
        ("reclaim", "reclaimdecision", ("view", "add", "change")),
        *(
            ("clusters", model, ("view",))
            for model in ("acceleratormodel", "site", "sitelink", "cluster", "node")
        ),
        *(
            ("leasing", model, ("view",))
            for model in ("tenant", "listing", "lease", "leaseline", "allocation", "notice")
        ),
    ],
}


def _viewer(apps):
    """Every view permission of the models of this state."""
    return [
        (label, model._meta.model_name, ("view",))
        for label in APPS
        for model in apps.get_app_config(label).get_models()
    ]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alias = schema_editor.connection.alias
    # On a fresh database permissions are created after the last migration (post_migrate):
    # create this state's now, so that the groups can hold them.
    for label in APPS:
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, verbosity=0, using=alias, apps=apps)
    for name, grants in {**ROLES, "viewer": _viewer(apps)}.items():
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


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(
        name__in=[*ROLES, "viewer"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("clusters", "0002_accelerator_catalog"),
        ("common", "0001_domain_events"),
        ("leasing", "0009_move_reclaim_and_webhooks_out"),
        ("billing", "0005_tamper_proof"),
        ("reclaim", "0001_initial"),
        ("webhooks", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
