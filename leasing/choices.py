"""State and kind enumerations of leasing (docs/rules/lease.md, "States")."""

from django.db import models


class TenantStanding(models.TextChoices):
    """Payment standing, computed by billing from the tenant's aging (never typed in):
    anything past due makes it PAST_DUE, anything more than 30 days past due DELINQUENT. A
    delinquent tenant's new lease requests are refused (`tenant_delinquent`)."""

    CURRENT = "current", "Current"
    PAST_DUE = "past_due", "Past due"
    DELINQUENT = "delinquent", "Delinquent (more than 30 days past due)"


class MembershipRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class ListingStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ListingEventKind(models.TextChoices):
    PUBLISHED = "listing.published", "Published"
    WITHDRAWN = "listing.withdrawn", "Withdrawn"


class ListingVisibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private to one tenant"


class LeaseStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    NOTICE_GIVEN = "notice_given", "Notice given"
    HOLDOVER = "holdover", "Holdover"
    TERMINATED = "terminated", "Terminated"
    EXPIRED = "expired", "Expired"
    CLOSED = "closed", "Closed"
    VOID = "void", "Void"
    CANCELLED = "cancelled", "Cancelled"


# Lease status groups (docs/rules/lease.md). Defined once, here, so the allocator, the operator
# pages, the API and reclaim cannot drift apart.

# Signed and not ended: notices may be given; the lease holds its nodes from commencement.
SIGNED = (LeaseStatus.SCHEDULED, LeaseStatus.ACTIVE, LeaseStatus.NOTICE_GIVEN)
# Ended by the boundary job; the nodes may still be to release.
ENDED = (LeaseStatus.TERMINATED, LeaseStatus.EXPIRED)
# Ended and, until `released_at` is set, still physically holding the nodes it had at its end
# (draining within the grace, or in holdover).
UNRELEASED = (*ENDED, LeaseStatus.HOLDOVER)
# A tenant holds, or will hold, capacity under a lease in these states.
HOLDING = (*SIGNED, LeaseStatus.HOLDOVER)
# Leases that never bind anyone: a request not yet approved, or a discarded one.
UNSIGNED = (LeaseStatus.DRAFT, LeaseStatus.VOID)


class LineStatus(models.TextChoices):
    OPEN = "open", "Open"
    ENDED = "ended", "Ended"
    CANCELLED = "cancelled", "Cancelled"


class Party(models.TextChoices):
    OPERATOR = "operator", "Operator"
    TENANT = "tenant", "Tenant"
    SYSTEM = "system", "System"


class NoticeStatus(models.TextChoices):
    RECORDED = "recorded", "Recorded"
    EFFECTIVE = "effective", "Effective"
    WITHDRAWN = "withdrawn", "Withdrawn"
    MOOT = "moot", "Moot"


class NoticeOutcome(models.TextChoices):
    ENDS = "ends", "Ends the lease (or lines) early"
    MOOT = "moot", "Moot: the term ends first"
    CANCELLED = "cancelled", "Cancelled before commencement"


# --- The fleet under a lease (docs/rules/fleet.md) ------------------------------------------


class SubstitutionPolicy(models.TextChoices):
    """Which spares may replace a failed node of a line; wider only where the lease says so."""

    SAME_CLUSTER = "same_cluster", "Same cluster"
    SAME_CAMPUS = "same_campus", "Same campus, same GPU model"
    SAME_MODEL = "same_model", "Same GPU model, any campus"


class DeferralStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    GRANTED = "granted", "Granted"
    DENIED = "denied", "Denied"
