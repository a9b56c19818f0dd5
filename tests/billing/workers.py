"""A separate process for the receivables concurrency tests (see tests/leasing/workers.py).

Actions:
  pay <tenant_id> <invoice_id> <amount> <reference>   payment_record(invoices=[invoice_id])
  pay_oldest <tenant_id> <amount> <reference>         payment_record(), oldest due first
  cancel_late <tenant_id> <lease_id> <line_id> <iso>  line_cancel_for_late_delivery at <iso>
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
    from billing import cancellation, payments
    from common.exceptions import DomainError
    from leasing.models import Tenant

    action, start_at, *args = sys.argv[1:]
    now = dt.datetime(2026, 12, 10, tzinfo=dt.UTC)
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        tenant = Tenant.objects.get(pk=int(args[0]))
        if action == "pay":
            payment = payments.payment_record(
                tenant=tenant,
                amount=args[2],
                value_date=now.date(),
                reference=args[3],
                invoices=[int(args[1])],
                now=now,
            )
        elif action == "pay_oldest":
            payment = payments.payment_record(
                tenant=tenant, amount=args[1], value_date=now.date(), reference=args[2], now=now
            )
        elif action == "cancel_late":
            outcome = cancellation.line_cancel_for_late_delivery(
                lease_id=int(args[1]),
                line_id=int(args[2]),
                party="tenant",
                now=dt.datetime.fromisoformat(args[3]),
            )
            print(json.dumps({"ok": True, "notes": [n.pk for n in outcome.notes]}), flush=True)
            return
        else:
            raise SystemExit(f"unknown action {action}")
        result = {"ok": True, "payment": payment.pk}
    except DomainError as exc:
        result = {"ok": False, "code": exc.code}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
