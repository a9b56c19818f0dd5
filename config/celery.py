"""The Celery application.

Delivery is at least once: tasks are acknowledged late and re-queued if the worker dies, so every
task must be idempotent (see the services they call). Exactly one beat process may run.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("landlord")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
