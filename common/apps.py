from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        # Every SQLite connection needs the function the tamper guards ask (common/tamper.py);
        # it answers "no maintenance" unless `maintenance()` is running on that connection.
        from .tamper import register_sqlite_function

        connection_created.connect(register_sqlite_function, dispatch_uid="tamper_guard_function")
        # Beat schedules exist right after `migrate`, not only once a beat process has run.
        from .beat import sync_beat_schedule

        post_migrate.connect(sync_beat_schedule, sender=self, dispatch_uid="sync_beat_schedule")
