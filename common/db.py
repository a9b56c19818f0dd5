"""Database helpers shared by the services."""

from __future__ import annotations

from typing import TypeVar

from django.db import connection, connections
from django.db.models import F, Model

M = TypeVar("M", bound=Model)


def lock_row(model: type[M], pk: int) -> M:
    """Lock one row for the rest of the transaction and return it freshly read, so a state
    check after the lock sees what concurrent writers committed.

    PostgreSQL: `SELECT ... FOR UPDATE`. SQLite has no row locks: a no-op write first takes the
    database write lock, so a concurrent writer waits here instead of both reading the same
    state. Raises `model.DoesNotExist` if the row is gone.
    """
    if connection.vendor == "sqlite":
        pk_name = model._meta.pk.attname
        model._default_manager.filter(pk=pk).update(**{pk_name: F(pk_name)})
    return model._default_manager.select_for_update().get(pk=pk)


def drop_broken_connections() -> None:
    """Before a task retries a transient database error: forget the connections a restarted
    server or a killed backend broke (never one inside a caller's transaction: eager mode)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()
