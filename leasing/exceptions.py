"""Coded refusals of the leasing services.

Every service raises one of these (never a bare exception) when a rule forbids what was asked,
and writes nothing when it does. `code` is the stable string clients and the admin see.
"""

from __future__ import annotations

from common.exceptions import Conflict, DomainError, InvalidInput, NotFound, TransitionNotAllowed

__all__ = [
    "CapacityUnavailable",
    "Conflict",
    "DomainError",
    "InvalidInput",
    "ListingUnavailable",
    "NotFound",
    "NoticeNotAllowed",
    "ReleaseNotAllowed",
    "RenewalNotAllowed",
    "TenantDelinquent",
    "TransitionNotAllowed",
    "WithdrawalNotAllowed",
]


class CapacityUnavailable(Conflict):
    """Not enough healthy nodes are free over the whole period (or a node is already held)."""

    code = "capacity_unavailable"
    default_message = "Not enough free healthy nodes for the whole period."


class TenantDelinquent(Conflict):
    """The tenant owes money more than 30 days past due: no new lease requests until it pays
    (capacity it already leases is never taken away for it)."""

    code = "tenant_delinquent"
    default_message = "Your account is more than 30 days past due; new lease requests are refused."


class ListingUnavailable(Conflict):
    """The listing is not published, or not visible to this tenant."""

    code = "listing_unavailable"
    default_message = "This listing is not available."


class NoticeNotAllowed(Conflict):
    """A notice can only be given on a signed lease (scheduled or active) that has not ended."""

    code = "notice_not_allowed"
    default_message = "A notice cannot be given on this lease now."


class WithdrawalNotAllowed(Conflict):
    """A withdrawal needs a recorded notice not yet effective, and the other party's consent."""

    code = "withdrawal_not_allowed"
    default_message = "This notice cannot be withdrawn now."


class RenewalNotAllowed(Conflict):
    """Only a signed lease running to its term end, not yet renewed, can be renewed."""

    code = "renewal_not_allowed"
    default_message = "This lease cannot be renewed."


class ReleaseNotAllowed(Conflict):
    """Release can only be confirmed for an ended lease whose nodes are not yet released."""

    code = "release_not_allowed"
    default_message = "Release cannot be confirmed for this lease now."
