"""Writes of the tenant API: the leasing services called as the tenant party.

Thin on purpose: the rules are in `leasing.services`; this module only turns API input (ids,
dates in the lease's zone) into service arguments, always as `Party.TENANT`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from common.contract_time import local_date
from common.exceptions import InvalidInput, NotFound
from leasing import notices, services
from leasing.choices import Party
from leasing.exceptions import ListingUnavailable
from leasing.models import Lease, Listing, Notice, Tenant

from .selectors import requested_end_instant


def tenant_lease_request(
    *,
    tenant: Tenant,
    listing: Listing,
    node_count: int,
    commencement_date: dt.date,
    now: dt.datetime | None = None,
) -> Lease:
    """The tenant asks for nodes of a listing: a DRAFT lease awaiting the operator.

    A listing withdrawn after the view found it (a race) is answered as the view answers a
    listing the tenant cannot see: it does not exist (404), never `listing_unavailable`.
    """
    try:
        return services.lease_request(
            tenant=tenant,
            listing=listing,
            node_count=node_count,
            commencement_date=commencement_date,
            now=now,
        )
    except ListingUnavailable as exc:
        raise NotFound() from exc


def tenant_notice_give(
    *,
    lease: Lease,
    line_ids: Sequence[int] = (),
    requested_end_date: dt.date | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> Notice:
    """The tenant gives notice on its lease, for all of it or for some of its lines."""
    today = local_date(now or timezone.now(), lease.contract_timezone)
    if requested_end_date is not None and requested_end_date < today:
        raise InvalidInput(extra={"fields": {"requested_end_date": ["Must not be before today."]}})
    ids = sorted(set(line_ids))
    lines = list(lease.lines.filter(pk__in=ids)) if ids else []
    if len(lines) != len(ids):
        raise InvalidInput(
            extra={"fields": {"lines": ["Every line must be a line of this lease."]}}
        )
    return notices.notice_give(
        lease=lease,
        party=Party.TENANT,
        lines=lines or None,
        requested_end=requested_end_instant(lease, requested_end_date),
        reason=reason,
        now=now,
    )


def tenant_notice_confirm_withdrawal(
    *, notice: Notice, reason: str = "", now: dt.datetime | None = None
) -> Notice:
    """The tenant consents to the operator's request to withdraw its notice."""
    return notices.notice_withdraw_confirm(
        notice=notice, party=Party.TENANT, reason=reason, now=now
    )
