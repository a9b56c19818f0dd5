from django.apps import AppConfig


class LeasingConfig(AppConfig):
    name = "leasing"
    verbose_name = "Leasing"

    def ready(self) -> None:
        # Consumers of domain events (`common.events`): lease events and issued billing
        # documents become webhook deliveries; nodes coming back execute reclaim decisions.
        from common import events

        from . import webhooks
        from .reclaim import consumers as reclaim

        events.register(
            webhooks.EVENT_TYPES, "webhooks.announce", webhooks.announce, wants=webhooks.listening
        )
        events.register(reclaim.BACK_EVENTS, "reclaim.executed", reclaim.mark_executed)
