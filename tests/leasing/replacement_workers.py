"""A separate process for the replacement races (tests/leasing/test_replacement_race.py).

Run as `python -m tests.leasing.replacement_workers <action> <start_at> <args...>` with
DATABASE_URL pointing at the test database. Waits until `start_at` (epoch seconds) so all
workers start together, then prints one JSON line: {"ok": true, ...} or {"ok": false, "code"}.

Both writers pause 1 s between reading the free nodes and writing, so a race that the locks
did not serialize would overlap for sure.

Actions:
  replace <allocation_id> <iso now>           node_replace(allocation, now)
  replace_unlocked <allocation_id> <iso now>  the same without the cluster lock (control only)
  approve <lease_id>                          lease_approve(now=2025-12-02)
  boundaries <iso now>                        process_boundaries(now)
"""

import datetime as dt
import json
import os
import sys
import time

PAUSE_S = 1.0


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from leasing import allocation, boundaries, replacement, services
    from leasing.exceptions import DomainError
    from leasing.models import Allocation, Lease

    action, start_at, *args = sys.argv[1:]
    pick = replacement._pick_spares

    def slow_pick(*a, **kw):
        pick(*a, **kw)
        time.sleep(PAUSE_S)

    replacement._pick_spares = slow_pick
    free = allocation.free_node_ids

    def slow_free(*a, **kw):
        found = free(*a, **kw)
        time.sleep(PAUSE_S)
        return found

    allocation.free_node_ids = slow_free
    if action == "replace_unlocked":
        replacement._lock_clusters = lambda ids: None
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        if action in ("replace", "replace_unlocked"):
            done = replacement.node_replace(
                allocation=Allocation.objects.select_related("line").get(pk=int(args[0])),
                now=dt.datetime.fromisoformat(args[1]),
            )
            result = {"ok": True, "spare": done.spare_allocation.node_id}
        elif action == "approve":
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
