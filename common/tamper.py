"""The tamper guards' one deliberate bypass: maintenance.

Database triggers (billing migration 0005) refuse tampering with issued billing documents,
their lines and the number series, on PostgreSQL and on SQLite alike. Every guard asks
`landlord_maintenance()` first and lets the write through unchecked only when it is true:

* PostgreSQL: a SQL function (created by the migration) that reads the session setting
  `landlord.maintenance`. `maintenance()` sets it for one transaction and clears it again.
* SQLite: a function of this module, registered on every connection by `CommonConfig`. It
  returns 1 only inside `maintenance()` on that same connection, 0 otherwise.

Who may use it, and nothing else (tests/billing/test_tamper.py fails if another module names
it): the `flush` command when `settings.FLUSH_BYPASSES_TAMPER_GUARDS` is on — test settings
only, because Django's test runner empties every table between transactional tests — and the
seed benchmark, which empties its own throwaway database.

Why this is not a hole: the guards stop application code, admin slips and hand-written SQL
from rewriting what was issued; they were never a defence against whoever owns the schema,
who can drop a trigger outright (or run as a PostgreSQL superuser with
`session_replication_role = replica`). The bypass is explicit, lasts one transaction on one
connection, and is named where a review sees it. A connection that does not know the function
(the `sqlite3` shell) gets an error instead of a write: it fails closed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

SQL_FUNCTION = "landlord_maintenance"
PG_SETTING = "landlord.maintenance"
# The per-connection flag the SQLite function reads (an attribute of Django's wrapper).
_SQLITE_FLAG = "_landlord_maintenance"


def register_sqlite_function(sender, connection: BaseDatabaseWrapper, **kwargs) -> None:
    """`connection_created` receiver: give a new SQLite connection `landlord_maintenance()`."""
    if connection.vendor != "sqlite":
        return
    wrapper = weakref.ref(connection)  # the raw connection must not keep the wrapper alive

    def in_maintenance() -> int:
        current = wrapper()
        return int(current is not None and getattr(current, _SQLITE_FLAG, False))

    # Not deterministic: SQLite must ask again on every row, never reuse an answer.
    connection.connection.create_function(SQL_FUNCTION, 0, in_maintenance)


@contextmanager
def maintenance(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Lift the tamper guards on one connection for the block, inside one transaction.

    PostgreSQL: the setting is local to the transaction and cleared before it ends; if the
    block raises, the rollback clears it as well. SQLite: the flag is cleared however the
    block ends. Other engines carry no guards.
    """
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            _set_pg(connection, "on")
            yield
            _set_pg(connection, "off")
        elif connection.vendor == "sqlite":
            setattr(connection, _SQLITE_FLAG, True)
            try:
                yield
            finally:
                setattr(connection, _SQLITE_FLAG, False)
        else:
            yield


def _set_pg(connection: BaseDatabaseWrapper, value: str) -> None:
    with connection.cursor() as cursor:
        # is_local: the setting dies with the transaction even if it is never cleared.
        cursor.execute("SELECT set_config(%s, %s, true)", [PG_SETTING, value])
