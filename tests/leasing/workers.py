"""A separate process for concurrency tests: its own interpreter, its own database connection.

Run as `python -m tests.leasing.workers <action> <start_at> <args...>` with DATABASE_URL pointing
at the test database. Waits until `start_at` (epoch seconds) so all workers start together,
then prints one JSON line: {"ok": true, ...} or {"ok": false, "code": ...}.

Actions:
  approve <lease_id>                 lease_approve(now=2025-12-02)
  approve_unlocked <lease_id>        the same with the cluster lock disabled and a pause between
                                     reading the free nodes and writing them (control only)
  boundaries <iso instant>           process_boundaries(now=instant)
"""

import datetime as dt
import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from leasing import allocation, boundaries, services
    from leasing.exceptions import DomainError
    from leasing.models import Lease

    action, start_at, *args = sys.argv[1:]
    if action == "approve_unlocked":
        services._lock_clusters = lambda ids: None  # the lock `lease_approve` takes
        original = allocation.free_node_ids

        def slow_free_node_ids(*a, **kw):
            found = original(*a, **kw)
            time.sleep(0.3)
            return found

        allocation.free_node_ids = slow_free_node_ids
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        if action in ("approve", "approve_unlocked"):
            lease = Lease.objects.get(pk=int(args[0]))
            services.lease_approve(lease=lease, now=dt.datetime(2025, 12, 2, tzinfo=dt.UTC))
            result = {"ok": True}
        elif action == "boundaries":
            counts = boundaries.process_boundaries(now=dt.datetime.fromisoformat(args[0]))
            result = {"ok": True, "counts": counts}
        else:
            raise SystemExit(f"unknown action {action}")
    except DomainError as exc:
        result = {"ok": False, "code": exc.code}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
