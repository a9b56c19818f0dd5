"""Benchmark: full-scale `seed_demo` on PostgreSQL against a raw bulk insert of the same rows.

The floor: every row the seed wrote is copied out, the tables are emptied, and the same rows
are loaded back with PostgreSQL COPY (the fastest bulk path there is) in one transaction, with
triggers and foreign-key checks off as in a restore.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/bench_seed.py [--scale 1]
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import report, throwaway_database, timed, verdict

# Tables the seed fills, in an order that satisfies foreign keys on reload.
SEED_APPS = ("clusters", "leasing", "billing")


def project_tables() -> list[str]:
    from django.apps import apps

    tables = []
    for label in SEED_APPS:
        tables.extend(m._meta.db_table for m in apps.get_app_config(label).get_models())
        tables.extend(
            f.remote_field.through._meta.db_table
            for m in apps.get_app_config(label).get_models()
            for f in m._meta.local_many_to_many
            if f.remote_field.through._meta.auto_created
        )
    return tables


def row_counts(tables: list[str]) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        counts = {}
        for t in tables:
            cur.execute(f'SELECT count(*) FROM "{t}"')
            counts[t] = cur.fetchone()[0]
    return counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()

    with throwaway_database("landlord_bench_seed"):
        from django.core.management import call_command
        from django.db import connection, transaction

        from common.tamper import maintenance

        tables = project_tables()
        before = row_counts(tables)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with timed() as seed_t:
            call_command("seed_demo", scale=args.scale, no_progress=True, stdout=io.StringIO())
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        after = row_counts(tables)
        written = {t: after[t] - before[t] for t in tables if after[t] - before[t] > 0}
        total = sum(written.values())
        with timed() as second_t:
            call_command("seed_demo", scale=args.scale, no_progress=True, stdout=io.StringIO())
        assert row_counts(tables) == after, "seed_demo is not idempotent"

        # Floor: copy every seeded row out, empty the tables, COPY the same rows back in.
        raw = connection.connection  # the psycopg connection under Django's
        dumps: dict[str, bytes] = {}
        with raw.cursor() as cur:
            for t in written:
                buf = io.BytesIO()
                with cur.copy(f'COPY "{t}" TO STDOUT') as copy:
                    for chunk in copy:
                        buf.write(chunk)
                dumps[t] = buf.getvalue()
        # Emptying issued documents and number series is what the tamper guards refuse: this
        # throwaway database is the one place that lifts them (common/tamper.py).
        with maintenance(), raw.cursor() as cur:
            cur.execute(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in written) + " RESTART IDENTITY CASCADE"
            )
        with timed() as floor_t, transaction.atomic(), raw.cursor() as cur:
            # A raw load: no triggers (issued documents are immutable once written, which
            # would refuse the reload) and no foreign-key checks, as a restore would do.
            cur.execute("SET LOCAL session_replication_role = replica")
            for t, data in dumps.items():
                with cur.copy(f'COPY "{t}" FROM STDIN') as copy:
                    copy.write(data)
        assert row_counts(tables) == after, "the floor did not reload the same rows"

    seed_s, floor_s = seed_t[0], floor_t[0]
    print(f"seed_demo --scale {args.scale} on PostgreSQL: {total:,} rows in {len(written)} tables")
    for t, n in sorted(written.items(), key=lambda kv: -kv[1]):
        print(f"  {t:32s} {n:>10,}")
    report(
        [
            ("seed wall time", f"{seed_s:.2f} s", "< 60 s", verdict(seed_s < 60)),
            ("seed rows/s", f"{total / seed_s:,.0f}", "", ""),
            ("second run (idempotent)", f"{second_t[0]:.2f} s", "no rows", "PASS"),
            ("peak RSS during seed", f"{max(rss_after, rss_before) / 1024:.0f} MiB", "", ""),
            ("floor: COPY same rows", f"{floor_s:.2f} s", "", ""),
            ("floor rows/s", f"{total / floor_s:,.0f}", "", ""),
            ("ratio seed / floor", f"{seed_s / floor_s:.1f}×", "", ""),
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
