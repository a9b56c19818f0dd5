"""A separate process for concurrency tests: its own interpreter, its own database connection.

Run as `python -m tests.leasing.workers <action> <start_at> <args...>` with DATABASE_URL pointing
at the test database. Waits until `start_at` (epoch seconds) so all workers start together,
then prints one JSON line: {"ok": true, ...} or {"ok": false, "code": ...}.

Actions:
  approve <lease_id>                 lease_approve(now=2025-12-02)
  approve_unlocked <lease_id>        the same with the cluster lock disabled and a pause between
                                     reading the free nodes and writing them (control only)
  approve_slow <lease_id>            the same, with the lock, pausing 1 s after reading the
                                     free nodes (the replacement races)
  boundaries <iso instant>           process_boundaries(now=instant)
  replace <allocation_id> <iso now>  node_replace(allocation, now), pausing 1 s after picking
                                     its spare (under the locks)
  replace_unlocked <allocation_id> <iso now>
                                     the same without the cluster lock (control only)
"""

import datetime as dt
import json
import os
import sys
import time


def slow(module, name: str, pause_s: float = 1.0) -> None:
    """Make `module.name` pause after it returns: a race the locks do not serialize would
    then overlap for sure."""
    original = getattr(module, name)

    def paused(*a, **kw):
        found = original(*a, **kw)
        time.sleep(pause_s)
        return found

    setattr(module, name, paused)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from leasing import allocation, boundaries, replacement, services
    from leasing.exceptions import DomainError
    from leasing.models import Allocation, Lease

    action, start_at, *args = sys.argv[1:]
    if action == "approve_unlocked":
        services._lock_clusters = lambda ids: None  # the lock `lease_approve` takes
        slow(allocation, "free_node_ids", 0.3)
    if action in ("approve_slow", "replace", "replace_unlocked"):
        slow(allocation, "free_node_ids")
        slow(replacement, "_pick_spares")
    if action == "replace_unlocked":
        replacement._lock_clusters = lambda ids: None  # the lock `nodes_replace` takes
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        if action in ("approve", "approve_unlocked", "approve_slow"):
            lease = Lease.objects.get(pk=int(args[0]))
            services.lease_approve(lease=lease, now=dt.datetime(2025, 12, 2, tzinfo=dt.UTC))
            result = {"ok": True}
        elif action in ("replace", "replace_unlocked"):
            done = replacement.node_replace(
                allocation=Allocation.objects.select_related("line").get(pk=int(args[0])),
                now=dt.datetime.fromisoformat(args[1]),
            )
            result = {"ok": True, "spare": done.spare_allocation.node_id}
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
