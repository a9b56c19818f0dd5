from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from common import events
        from leasing.events import EventKind

        from . import consumers

        events.register(
            consumers.CREDIT_NOTE_KINDS, "billing.credit_notes", consumers.credit_lease_changes
        )
        events.register(
            [EventKind.LEASE_ACTIVATED], "billing.first_invoice", consumers.bill_on_activation
        )
