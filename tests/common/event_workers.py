"""A separate process consuming one event delivery, for the race tests of `common.events`.

Run as `python -m tests.common.event_workers <action> <start_at> <delivery_id>` (action:
`deliver` or `deliver_unlocked`) with DATABASE_URL pointing at the test database. Waits until
`start_at` (epoch seconds), consumes the delivery with `events.deliver`, and prints one JSON
line: {"status": ..., "ran": bool}. The consumer is slowed down (it holds its transaction
0.5 s longer) so two processes overlap.

`deliver_unlocked` is the control: the delivery is read without its row lock (a consumer that
merely checks the status), to show that the race then runs the consumer twice.
"""

import dataclasses
import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from common import events
    from common.models import EventDelivery, EventDeliveryStatus

    action, start_at, delivery_id = sys.argv[1:]
    delivery_id = int(delivery_id)
    name = EventDelivery.objects.values_list("consumer", flat=True).get(pk=delivery_id)
    consumer = events._consumers[name]
    ran = []

    def slow(event):
        ran.append(True)
        consumer.fn(event)
        time.sleep(0.5)

    events._consumers[name] = dataclasses.replace(consumer, fn=slow)
    if action == "deliver_unlocked":
        events._claim = lambda pk: (
            EventDelivery.objects.select_related("event")
            .filter(pk=pk, status=EventDeliveryStatus.PENDING)
            .first()
        )
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(delay)
    status = events.deliver(delivery_id)
    print(json.dumps({"status": status, "ran": bool(ran)}), flush=True)


if __name__ == "__main__":
    main()
