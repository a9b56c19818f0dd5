from django.apps import AppConfig


class LeasingConfig(AppConfig):
    name = "leasing"
    verbose_name = "Leasing"

    def ready(self) -> None:
        # Signal receivers: a released lease moves its reclaim decisions to EXECUTED.
        from .reclaim import receivers  # noqa: F401
