from django.apps import AppConfig


class LeasingConfig(AppConfig):
    name = "leasing"
    verbose_name = "Leasing"

    def ready(self) -> None:
        # Signal receivers: lease events become webhook deliveries; a released lease moves its
        # reclaim decisions to EXECUTED.
        from . import webhooks  # noqa: F401
        from .reclaim import receivers  # noqa: F401
