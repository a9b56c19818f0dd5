"""A separate process approving a reclaim decision: its own interpreter and connection.

`python -m tests.reclaim.workers approve <start_at> <decision_id> <now ISO>` waits until
`start_at` (epoch seconds) so every worker starts together, then prints one JSON line.
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
    from common.exceptions import DomainError
    from reclaim.models import ReclaimDecision
    from reclaim.services import decision_approve

    action, start_at, decision_id, now = sys.argv[1:]
    if action != "approve":
        raise SystemExit(f"unknown action {action}")
    decision = ReclaimDecision.objects.get(pk=int(decision_id))
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        decision_approve(decision=decision, now=dt.datetime.fromisoformat(now))
        result = {"ok": True}
    except DomainError as exc:
        result = {"ok": False, "code": exc.code}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
