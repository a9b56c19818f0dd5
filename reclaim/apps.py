from django.apps import AppConfig


class ReclaimConfig(AppConfig):
    name = "reclaim"
    verbose_name = "Reclaim"

    def ready(self) -> None:
        # Nodes coming back (domain events, `common.events`) execute reclaim decisions.
        from common import events

        from . import consumers

        events.register(consumers.BACK_EVENTS, "reclaim.executed", consumers.mark_executed)

        # The lease admin's operator notice shows its money effect (leasing/notice_effects.py).
        from leasing import notice_effects

        from .risk import lease_notice_effects

        notice_effects.register_effects_provider(lease_notice_effects)
