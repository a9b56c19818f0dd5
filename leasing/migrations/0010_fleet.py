"""The fleet under a lease: acceptance records, replacements, maintenance deferrals, the
line's substitution policy and the instant each allocated node was accepted.

Allocations made before acceptance records existed were handed over with their lease: they are
marked accepted at their start, so rent that followed them keeps following them
(docs/rules/fleet.md, "Rent follows accepted nodes"). The update is one statement per table,
safe on a populated database; going back drops the column.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def accept_existing_allocations(apps, schema_editor):
    Allocation = apps.get_model("leasing", "Allocation")
    Allocation.objects.using(schema_editor.connection.alias).filter(
        accepted_at__isnull=True
    ).update(accepted_at=F("starts_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('clusters', '0003_fleet'),
        ('leasing', '0009_move_reclaim_and_webhooks_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='allocation',
            name='accepted_at',
            field=models.DateTimeField(blank=True, help_text='When the node passed acceptance for this line (its latest passing record).', null=True),
        ),
        migrations.RunPython(accept_existing_allocations, migrations.RunPython.noop),
        migrations.AddField(
            model_name='leaseline',
            name='substitution_policy',
            field=models.CharField(choices=[('same_cluster', 'Same cluster'), ('same_campus', 'Same campus, same GPU model'), ('same_model', 'Same GPU model, any campus')], default='same_cluster', help_text='Which spares may replace a failed node (wider only where the lease says so).', max_length=16),
        ),
        migrations.CreateModel(
            name='Replacement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('reason', models.CharField(blank=True, default='', max_length=500)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('failed_allocation', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='replaced_by', to='leasing.allocation')),
                ('incident', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='replacements', to='clusters.incident')),
                ('line', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='replacements', to='leasing.leaseline')),
                ('spare_allocation', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='replacement_for', to='leasing.allocation')),
            ],
            options={
                'ordering': ['-at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='AcceptanceRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('batch', models.CharField(blank=True, default='', max_length=64)),
                ('tests', models.JSONField(default=list)),
                ('passed', models.BooleanField()),
                ('source', models.CharField(help_text='Where the results came from: nccl-tests, json, manual.', max_length=32)),
                ('raw', models.TextField(blank=True, default='', help_text='The tool output, as imported.')),
                ('signed_at', models.DateTimeField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('allocation', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='acceptance_records', to='leasing.allocation')),
                ('incident', models.ForeignKey(blank=True, help_text='The incident a failed acceptance opened.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='acceptance_records', to='clusters.incident')),
                ('node', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='acceptance_records', to='clusters.node')),
                ('signed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-signed_at', '-id'],
                'indexes': [models.Index(fields=['allocation', 'signed_at'], name='acceptance_alloc_at'), models.Index(fields=['node', 'signed_at'], name='acceptance_node_at')],
            },
        ),
        migrations.CreateModel(
            name='MaintenanceDeferral',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('requested_at', models.DateTimeField()),
                ('requested_start', models.DateTimeField(help_text='The start the tenant asks for.')),
                ('reason', models.CharField(blank=True, default='', max_length=1000)),
                ('status', models.CharField(choices=[('requested', 'Requested'), ('granted', 'Granted'), ('denied', 'Denied')], default='requested', max_length=16)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('decision_note', models.CharField(blank=True, default='', max_length=500)),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deferrals', to='leasing.tenant')),
                ('window', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deferrals', to='clusters.maintenancewindow')),
            ],
            options={
                'ordering': ['-requested_at', '-id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'requested')), fields=('window', 'tenant'), name='deferral_one_open_per_tenant'), models.CheckConstraint(condition=models.Q(models.Q(('status', 'requested'), ('decided_at__isnull', True)), models.Q(models.Q(('status', 'requested'), _negated=True), ('decided_at__isnull', False)), _connector='OR'), name='deferral_decided_iff_decided_at')],
            },
        ),
    ]
