"""Writes to the inventory, and the seam between ORM rows and the performance model.

`clusters/perfmodel/` never imports Django; this module is the only place that turns inventory
rows into model inputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from .choices import NodeStatus
from .models import Node, Site, SiteLink


@transaction.atomic
def node_set_status(
    *, node_ids: Iterable[int], status: str, now: dt.datetime | None = None, note: str = ""
) -> int:
    """Set the status of the given nodes; returns how many changed.

    Nodes already in `status` are left alone, so their `status_changed_at` keeps telling when
    they really changed.
    """
    if status not in NodeStatus.values:
        raise ValueError(f"unknown node status {status!r}")
    now = now or timezone.now()
    changes = {"status": status, "status_changed_at": now}
    if note:
        changes["note"] = note
    return Node.objects.filter(pk__in=list(node_ids)).exclude(status=status).update(**changes)


def site_link_create(*, site_a: Site, site_b: Site, **fields: object) -> SiteLink:
    """Create the link between two different sites, stored in canonical (lower id first) order."""
    link = SiteLink(site_a=site_a, site_b=site_b, **fields)
    link.full_clean()
    link.save()
    return link
