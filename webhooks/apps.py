from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Lease events and issued billing documents (domain events, `common.events`) become
        # webhook deliveries for the tenants that listen.
        from common import events

        from . import fleet, services

        events.register(
            services.ANNOUNCED_TYPES,
            "webhooks.announce",
            services.announce,
            wants=services.listening,
        )
        # The fleet's events (incidents, maintenance, acceptance, replacement): the tenants
        # holding the nodes concerned.
        events.register(
            services.FLEET_EVENT_TYPES, "webhooks.fleet", fleet.announce_fleet, wants=fleet.wanted
        )
