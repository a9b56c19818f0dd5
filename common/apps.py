from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        # Every SQLite connection needs the function the tamper guards ask (common/tamper.py);
        # it answers "no maintenance" unless `maintenance()` is running on that connection.
        from .tamper import register_sqlite_function

        connection_created.connect(register_sqlite_function, dispatch_uid="tamper_guard_function")
