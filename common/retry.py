"""Retry schedules shared by the outboxes (domain-event deliveries, webhook deliveries)."""

from __future__ import annotations

import datetime as dt


def exponential_backoff(attempts: int, *, base: dt.timedelta, cap: dt.timedelta) -> dt.timedelta:
    """The wait after the `attempts`-th failure: `base`, 2 × `base`, 4 × `base`, ... at most
    `cap`."""
    return min(base * (2 ** max(attempts - 1, 0)), cap)
