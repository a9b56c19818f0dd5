from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Lease events and issued billing documents (domain events, `common.events`) become
        # webhook deliveries for the tenants that listen.
        from common import events

        from . import services

        events.register(
            services.EVENT_TYPES, "webhooks.announce", services.announce, wants=services.listening
        )
