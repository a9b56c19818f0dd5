"""The webhooks app takes over its models from leasing, table and rows included.

The state is created over the existing leasing tables, then each table is renamed in place
(ALTER TABLE ... RENAME: no copy, no drop), and the content types follow so that permissions,
group grants and admin history stay attached.
"""

import functools

import django.db.models.deletion
from django.db import migrations, models


def move_content_types(apps, schema_editor, *, models, source, target):
    """Permissions, admin history and group grants follow the model: re-label its content type."""
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in models:
        content_type.objects.filter(app_label=source, model=model).exclude(
            model__in=content_type.objects.filter(app_label=target).values("model")
        ).update(app_label=target)



class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('leasing', '0009_move_reclaim_and_webhooks_out'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500)),
                        ('description', models.CharField(blank=True, default='', max_length=200)),
                        ('secret', models.CharField(help_text='Signing secret (whsec_…).', max_length=100)),
                        ('event_types', models.JSONField(blank=True, default=list)),
                        ('is_active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('disabled_at', models.DateTimeField(blank=True, null=True)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_endpoints', to='leasing.tenant')),
                    ],
                    options={
                        'db_table': 'leasing_webhookendpoint',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event_id', models.CharField(max_length=64)),
                        ('event_type', models.CharField(max_length=64)),
                        ('payload', models.JSONField()),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed (gave up)')], db_index=True, default='pending', max_length=16)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, db_index=True, null=True)),
                        ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True, default='')),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='webhooks.webhookendpoint')),
                    ],
                    options={
                        'db_table': 'leasing_webhookdelivery',
                        'verbose_name_plural': 'webhook deliveries',
                        'ordering': ['-created_at'],
                        'constraints': [models.UniqueConstraint(fields=('endpoint', 'event_id'), name='webhook_delivery_once_per_endpoint')],
                    },
                ),
            ],
            database_operations=[],
        ),
        # The real move: ALTER TABLE ... RENAME (and the many-to-many tables with it).
        migrations.AlterModelTable(name='webhookendpoint', table=None),
        migrations.AlterModelTable(name='webhookdelivery', table=None),
        migrations.RunPython(
            functools.partial(
                move_content_types, models=['webhookendpoint', 'webhookdelivery'], source='leasing', target='webhooks'
            ),
            functools.partial(
                move_content_types, models=['webhookendpoint', 'webhookdelivery'], source='webhooks', target='leasing'
            ),
        ),
    ]
