from django.apps import AppConfig


class LeasingConfig(AppConfig):
    name = "leasing"
    verbose_name = "Leasing"

    def ready(self) -> None:
        # The inventory's guards ask leasing who holds a node (clusters/guards.py).
        from clusters import guards

        from .maintenance import node_holdings

        guards.register_holdings_provider(node_holdings)
