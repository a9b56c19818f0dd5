"""No overcommit in the database: a node is held by at most one allocation at any instant.

PostgreSQL only (SQLite has no exclusion constraints; the allocation service enforces the same
rule under locks there). btree_gist ships with the server. Half-open ranges `[)` let one
allocation end exactly where the next begins. A violation raises SQLSTATE 23P01.
"""

from django.db import migrations

CONSTRAINT = "allocation_node_no_overlap"


def add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE leasing_allocation ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(node_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)"
    )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE leasing_allocation DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("leasing", "0001_leasing")]
    operations = [migrations.RunPython(add, remove)]
