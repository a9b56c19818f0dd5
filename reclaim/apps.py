from django.apps import AppConfig


class ReclaimConfig(AppConfig):
    name = "reclaim"
    verbose_name = "Reclaim"

    def ready(self) -> None:
        # A released lease moves its reclaim decisions to EXECUTED.
        from . import receivers  # noqa: F401
