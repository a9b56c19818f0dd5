"""Beat schedules exist after `migrate` and keep operators' edits (common/beat.py)."""

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from common.beat import sync_beat_schedule

pytestmark = pytest.mark.django_db


def test_every_scheduled_job_is_in_the_database_after_migrate():
    # The test database was built by `migrate`, whose post_migrate ran the sync.
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(settings.CELERY_BEAT_SCHEDULE) <= names
    boundaries = PeriodicTask.objects.get(name="lease-boundaries")
    assert boundaries.task == "leasing.process_boundaries"
    assert boundaries.crontab.minute == "*/5"


def test_the_sync_creates_what_is_missing_and_leaves_edits_alone():
    PeriodicTask.objects.filter(name="billing-daily").delete()
    PeriodicTask.objects.filter(name="billing-overdue").update(enabled=False)
    assert sync_beat_schedule() == ["billing-daily"]
    assert PeriodicTask.objects.get(name="billing-daily").task == "billing.daily_billing_scan"
    assert PeriodicTask.objects.get(name="billing-overdue").enabled is False
    assert sync_beat_schedule() == []
