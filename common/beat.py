"""The beat schedule in the database from the first `migrate` (docs/architecture.md, "Jobs").

django-celery-beat copies `CELERY_BEAT_SCHEDULE` into its tables only when a beat process
starts, so until then the operators' list of periodic tasks is empty. After every `migrate`
this creates the entries that are missing, with django-celery-beat's own mapping from a
schedule to its rows; entries that exist are left as operators edited them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def sync_beat_schedule(**_: Any) -> list[str]:
    """Create the missing periodic tasks of `CELERY_BEAT_SCHEDULE`; returns their names."""
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    schedule: dict[str, dict[str, Any]] = getattr(settings, "CELERY_BEAT_SCHEDULE", {})
    existing = set(
        PeriodicTask.objects.filter(name__in=list(schedule)).values_list("name", flat=True)
    )
    created = []
    for name, entry in schedule.items():
        if name in existing:
            continue
        PeriodicTask.objects.create(name=name, **ModelEntry._unpack_fields(**entry))
        created.append(name)
    return created
