"""Assertions shared by leasing tests."""

from leasing.models import Allocation, Lease, LeaseEvent, LeaseLine, Notice


def db_state() -> tuple:
    """Everything a refused service must leave untouched: rows and their state."""
    return (
        list(
            Lease.objects.order_by("pk").values_list("pk", "status", "effective_end", "released_at")
        ),
        list(LeaseLine.objects.order_by("pk").values_list("pk", "status", "effective_end")),
        list(
            Notice.objects.order_by("pk").values_list(
                "pk", "status", "withdrawal_requested_by", "withdrawn_at"
            )
        ),
        list(
            Allocation.objects.order_by("pk").values_list("pk", "node_id", "starts_at", "ends_at")
        ),
        LeaseEvent.objects.count(),
    )
