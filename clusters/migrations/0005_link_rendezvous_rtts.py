"""SiteLink.handshake_rtts (whole round trips) becomes rendezvous_rtts (a real number).

A rendezvous transport was measured to pay one round trip per ring step in all, i.e. half a
round trip on top of the one-way delay, which an integer could not say (docs/model.md,
"Links"). Existing rows keep their value (the model charges them exactly as before); new links
default to the measured 0.5. Reversing rounds to the nearest whole round trip.
"""

from django.db import migrations, models


def copy_forward(apps, schema_editor):
    SiteLink = apps.get_model("clusters", "SiteLink")
    SiteLink.objects.update(rendezvous_rtts=models.F("handshake_rtts"))


def copy_backward(apps, schema_editor):
    SiteLink = apps.get_model("clusters", "SiteLink")
    for link in SiteLink.objects.only("pk", "rendezvous_rtts"):
        SiteLink.objects.filter(pk=link.pk).update(
            handshake_rtts=max(0, round(link.rendezvous_rtts))
        )


class Migration(migrations.Migration):
    dependencies = [("clusters", "0004_maint_window_updated_by")]

    operations = [
        migrations.AddField(
            model_name="sitelink",
            name="rendezvous_rtts",
            field=models.FloatField(
                default=0.5,
                help_text=(
                    "Round trips each collective step waits before sending, on top of the "
                    "one-way delay (0.5: a receiver-ready rendezvous, one round trip per step in "
                    "all; 0: eager)."
                ),
            ),
        ),
        migrations.RunPython(copy_forward, copy_backward),
        migrations.RemoveField(model_name="sitelink", name="handshake_rtts"),
        migrations.AddConstraint(
            model_name="sitelink",
            constraint=models.CheckConstraint(
                condition=models.Q(rendezvous_rtts__gte=0), name="sitelink_rendezvous_nonneg"
            ),
        ),
    ]
