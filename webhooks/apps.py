from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Lease events become webhook deliveries (receiver in services).
        from . import services  # noqa: F401
