"""Database helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, cast

from django.db import connection, connections
from django.db.models import F, Field, Lookup, Model, Q

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


class AnyOf(Lookup):
    """`lhs = ANY(%s)`: the values as one array parameter (PostgreSQL). Built by `among`."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        field = self.lhs.output_field
        return "%s", ([field.get_db_prep_value(v, connection) for v in value],)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def among(field: str, values: Iterable[Any]) -> Q | AnyOf:
    """A filter for `field IN values`, for lists of hundreds or thousands of values. On
    PostgreSQL `field = ANY(%s)` with one array parameter: the statement's text, and the time
    spent building, quoting and parsing it, do not grow with the list (an `IN` list costs a
    placeholder, a quoted literal and a parse per value). Elsewhere Django's `__in`."""
    values = list(values)
    if connection.vendor == "postgresql":
        return AnyOf(F(field), values)
    return Q(**{f"{field}__in": values})


def update_from_values(
    model: type[Model],
    key: Sequence[str],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> int:
    """Give each row of `model` matched by the `key` fields its own values of `fields`: every
    item of `rows` is the key's values then the fields' values. One `UPDATE ... FROM (VALUES
    ...)` (PostgreSQL; SQLite since 3.33) per chunk the database's parameter limit allows, where
    `bulk_update` builds a `CASE` over every row for each field. Values are prepared by their
    fields as the ORM would. Returns the number of rows updated.

    Both databases name the columns of a VALUES list `column1`, `column2`, ... (SQLite takes no
    column aliases there, and reports no row count for a statement that starts with `WITH`)."""
    if not rows:
        return 0
    columns = [cast(Field, model._meta.get_field(name)) for name in (*key, *fields)]
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    names = [qn(str(f.column)) for f in columns]
    sets = ", ".join(f"{name} = v.column{i + 1}" for i, name in enumerate(names) if i >= len(key))
    where = " AND ".join(
        f"{table}.{name} = v.column{i + 1}" for i, name in enumerate(names[: len(key)])
    )
    limit = connection.features.max_query_params
    per_statement = max(1, limit // len(columns)) if limit else len(rows)
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [
                f.get_db_prep_value(value, connection)
                for row in chunk
                for f, value in zip(columns, row, strict=True)
            ]
            cursor.execute(
                # Table and column names come from the model; every value is a parameter.
                f"UPDATE {table} SET {sets} "  # nosec B608
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v WHERE {where}",
                params,
            )
            updated += cursor.rowcount
    return updated
