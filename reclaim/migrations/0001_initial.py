"""The reclaim app takes over its models from leasing, table and rows included.

The state is created over the existing leasing tables, then each table is renamed in place
(ALTER TABLE ... RENAME: no copy, no drop), and the content types follow so that permissions,
group grants and admin history stay attached.
"""

import functools

import django.db.models.deletion
from django.conf import settings
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
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReclaimDecision',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('title', models.CharField(max_length=200)),
                        ('status', models.CharField(choices=[('draft', 'Draft'), ('scored', 'Scored'), ('approved', 'Approved'), ('notice_issued', 'Notice issued'), ('executed', 'Executed'), ('rejected', 'Rejected')], db_index=True, default='draft', max_length=16)),
                        ('scope_kind', models.CharField(help_text='lease, lines, cluster, site or plan: how the set was chosen.', max_length=16)),
                        ('notice_date', models.DateField(help_text='Date the operator notice would be given.')),
                        ('workload', models.JSONField(blank=True, default=dict, help_text='Workload field overrides.')),
                        ('economics', models.JSONField(blank=True, default=dict, help_text='Economics overrides.')),
                        ('inputs', models.JSONField(blank=True, help_text='Scenario document scored.', null=True)),
                        ('model_version', models.CharField(blank=True, default='', max_length=20)),
                        ('assessment', models.JSONField(blank=True, null=True)),
                        ('window_start', models.DateTimeField(blank=True, null=True)),
                        ('window_end', models.DateTimeField(blank=True, null=True)),
                        ('internal_value', models.DecimalField(blank=True, decimal_places=2, help_text='USD over the window.', max_digits=18, null=True)),
                        ('rent_forgone', models.DecimalField(blank=True, decimal_places=2, help_text='USD over the window.', max_digits=18, null=True)),
                        ('net_value', models.DecimalField(blank=True, decimal_places=2, help_text='internal value − rent forgone.', max_digits=18, null=True)),
                        ('recommendation', models.CharField(blank=True, choices=[('reclaim', 'Reclaim'), ('keep_leased', 'Keep leased')], default='', max_length=16)),
                        ('previous_recommendation', models.CharField(blank=True, choices=[('reclaim', 'Reclaim'), ('keep_leased', 'Keep leased')], default='', max_length=16)),
                        ('flipped_at', models.DateTimeField(blank=True, help_text='Last re-score that changed the recommendation.', null=True)),
                        ('reason', models.CharField(blank=True, default='', max_length=500)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('scored_at', models.DateTimeField(blank=True, null=True)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('executed_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('lines', models.ManyToManyField(related_name='reclaim_decisions', to='leasing.leaseline')),
                        ('notices', models.ManyToManyField(blank=True, related_name='reclaim_decisions', to='leasing.notice')),
                    ],
                    options={
                        'db_table': 'leasing_reclaimdecision',
                        'permissions': [('approve_reclaimdecision', 'Can approve a reclaim decision and give its notices')],
                        'ordering': ['-created_at'],
                        'constraints': [models.CheckConstraint(condition=models.Q(('window_start__isnull', True), ('window_end__isnull', True), ('window_end__gte', models.F('window_start')), _connector='OR'), name='reclaim_window_ordered'), models.CheckConstraint(condition=models.Q(('rent_forgone__isnull', True), ('rent_forgone__gte', 0), _connector='OR'), name='reclaim_rent_nonneg')],
                    },
                ),
            ],
            database_operations=[],
        ),
        # The real move: ALTER TABLE ... RENAME (and the many-to-many tables with it).
        migrations.AlterModelTable(name='reclaimdecision', table=None),
        migrations.RunPython(
            functools.partial(
                move_content_types, models=['reclaimdecision'], source='leasing', target='reclaim'
            ),
            functools.partial(
                move_content_types, models=['reclaimdecision'], source='reclaim', target='leasing'
            ),
        ),
    ]
