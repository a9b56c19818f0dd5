"""The money effect of an operator notice, for the lease admin's confirmation page.

What a notice forgoes (rent from when the capacity is back to when the line would have ended)
and the credit notes that follow are computed by reclaim (`reclaim.risk.lease_notice_effects`,
the code a reclaim decision's approval page uses), which leasing may not import
(docs/architecture.md, "Apps and layering"). So reclaim registers it here when its app is ready
(`reclaim.apps.ReclaimConfig.ready`), as leasing does for the inventory's guards
(clusters/guards.py), and the lease admin asks through `effects()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class NoticeRequest:
    """An operator notice on a whole lease, given on `notice_date` (the lease's local date),
    ending no earlier than `requested_end` if given."""

    lease_id: int
    notice_date: dt.date
    requested_end: dt.datetime | None = None


class NoticeEffect(Protocol):
    """What the page shows of one lease line under the notice."""

    @property
    def facts(self) -> Any: ...  # lease id and number, tenant, cluster, the line's monthly rate

    @property
    def back_at(self) -> dt.datetime: ...

    @property
    def until(self) -> dt.datetime: ...

    @property
    def rent_forgone(self) -> Decimal: ...

    @property
    def credit(self) -> Decimal: ...


EffectsProvider = Callable[[Sequence[NoticeRequest]], Sequence[NoticeEffect]]

_provider: EffectsProvider | None = None


def register_effects_provider(provider: EffectsProvider) -> None:
    """Called once by the app that prices notices (reclaim), in its `ready()`."""
    global _provider
    _provider = provider


def effects(requests: Sequence[NoticeRequest]) -> Sequence[NoticeEffect]:
    """The lines these notices would take back, with rent forgone and credits; empty when the
    notices would change nothing."""
    if _provider is None:
        raise ImproperlyConfigured("No provider prices operator notices (reclaim not installed).")
    return _provider(requests)
