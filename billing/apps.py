from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Signal receivers: an activated lease is billed at once.
        from . import receivers  # noqa: F401
