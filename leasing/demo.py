"""Demo leasing data on top of the demo inventory (`clusters.demo.seed_inventory`).

The story of docs/README.md ("The motivating case"): two AI labs lease most of campus 1 —
Northwind AI about $1.25B a month and Helios Labs about $0.92B a month — under 180-day terms
with 90-day mutual notice. Around
them: Northwind's first term, expired and renewed on the same nodes; a scheduled Northwind
lease on campus 3; a Helios lease on campus 2 with a tenant notice in flight; and public
listings of what is left.

Everything is created through `leasing.services` with the clock set in the past (requests,
approvals, the renewal, the notice), and the boundary job is replayed at each boundary's own
instant (`replay_boundaries`) before each back-dated step and then at `now`: a lease activates
at its commencement, not at the seeding instant, so billing's consumer of the activation
invoices its first month then (as the product would have), and the rows are exactly what the
product would have produced. The headline rents are the full-scale story
and are SCALED WITH THE FLEET: at `scale` s the campus-1 leases rent for s × $1.25B and
s × $0.92B a month (node counts follow the inventory, which is scaled already), so rent per
GPU — and with it every break-even the reclaim workbench prints — is the same at every seed
scale. (Before, a 2 % demo kept full-size rents on 2 % of the GPUs: a break-even scarcity of
about 500 instead of about 10.)

The hand-over is part of that history: demo nodes count as accepted when their allocation
started (`acceptance.demo_accept_on_time`), and the phased hand-over of the lease given notice
(`acceptance.seed_demo_handover`) is recorded before its notice, so what billing computes at
each past instant is what it would have computed then.

Idempotent: leases are keyed by `Lease.reference` (`demo:...`), listings by title, tenants by
slug; a second run creates nothing. Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from clusters.models import Cluster
from common.contract_time import local_date
from common.money import round_money
from common.progress import ProgressFn, quiet_progress

from . import acceptance, allocation, boundaries, notices, services
from .choices import ListingStatus, ListingVisibility, MembershipRole, NoticeStatus, Party
from .models import Lease, Listing, Notice, Tenant, TenantMembership

TZ = "America/Chicago"
DAY = dt.timedelta(days=1)

TENANTS = [
    ("northwind-ai", "Northwind AI", "ap@northwind.example"),
    ("helios-labs", "Helios Labs", "finance@helios.example"),
]
# Share of each campus-1 cluster leased to each lab ("most of campus 1": 90 % of every hall).
CAMPUS1_SHARES = {"northwind-ai": Decimal("0.55"), "helios-labs": Decimal("0.35")}
SPOT_REFERENCE = "demo:helios-campus3-spot"
CAMPUS1_RENT = {"northwind-ai": Decimal("1250000000.00"), "helios-labs": Decimal("920000000.00")}


def scaled_rents(scale: float) -> dict[str, Decimal]:
    """The campus-1 headline rents at a seed scale: full-scale rent × scale, to the cent."""
    factor = Decimal(str(scale))
    return {slug: round_money(rent * factor) for slug, rent in CAMPUS1_RENT.items()}


def _split_rent(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` by weights to the cent; the last line takes the rounding remainder."""
    whole = sum(weights)
    parts = [round_money(total * w / whole) for w in weights[:-1]]
    return [*parts, total - sum(parts, Decimal(0))]


def _market_monthly(cluster: Cluster, nodes: int) -> Decimal:
    """Market rent of `nodes` nodes for an average month (730 hours)."""
    price = cluster.accelerator.market_price_per_gpu_hour
    return round_money(price * cluster.gpus_per_node * nodes * 730)


def _lines(site: str, share: Decimal, rent: Decimal | None) -> list[services.LineSpec]:
    clusters = list(
        Cluster.objects.filter(site__slug=site).select_related("accelerator").order_by("slug")
    )
    counts = [(c, max(1, int(c.nodes.count() * share))) for c in clusters]
    market = [_market_monthly(c, n) for c, n in counts]
    rates = market if rent is None else _split_rent(rent, market)
    return [
        services.LineSpec(cluster=c, node_count=n, monthly_rate=r)
        for (c, n), r in zip(counts, rates, strict=True)
    ]


def _tenant(slug: str, name: str, email: str) -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(
        slug=slug, defaults={"name": name, "billing_email": email}
    )
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=f"{slug}-admin", defaults={"email": email}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    TenantMembership.objects.get_or_create(
        tenant=tenant, user=user, defaults={"role": MembershipRole.ADMIN}
    )
    return tenant


def _signed_lease(
    *,
    reference: str,
    tenant: Tenant,
    lines: list[services.LineSpec],
    commencement_date: dt.date,
    now: dt.datetime,
    notice_days: int = 90,
) -> Lease:
    """Request (40 days before commencement, or now if that is later) and approve (a day on)."""
    requested_at = min(
        now, dt.datetime.combine(commencement_date, dt.time(15), tzinfo=dt.UTC) - 40 * DAY
    )
    lease = services.lease_create(
        tenant=tenant,
        lines=lines,
        commencement_date=commencement_date,
        contract_timezone=TZ,
        reference=reference,
        party=Party.TENANT,
        notice_days=notice_days,
        now=requested_at,
    )
    return services.lease_approve(lease=lease, now=requested_at + DAY)


def seed_leasing(
    *, scale: float = 1.0, now: dt.datetime, progress: ProgressFn = quiet_progress
) -> dict[str, int]:
    """Create the demo tenants, leases and listings; returns rows created per kind.

    `scale` scales the headline campus-1 rents with the fleet (module docstring); node counts
    already follow the scaled inventory. `progress(label, done, total)` is called after each
    lease. Needs the demo inventory (sites `campus-1`, `campus-2`, `campus-3`).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    missing = {"campus-1", "campus-2", "campus-3"} - set(
        Cluster.objects.values_list("site__slug", flat=True)
    )
    if missing:
        raise ValueError(f"seed the inventory first (missing sites: {sorted(missing)})")
    created = {"tenants": 0, "leases": 0, "listings": 0, "acceptance_records": 0}
    rents = scaled_rents(scale)
    today = local_date(now, TZ)
    with transaction.atomic():
        before = Tenant.objects.count()
        tenants = {slug: _tenant(slug, name, email) for slug, name, email in TENANTS}
        created["tenants"] = Tenant.objects.count() - before
    steps = 7  # six lease steps, then the listings
    step = 0

    def done() -> None:
        nonlocal step
        step += 1
        progress("leases and listings", step, steps)

    northwind, helios = tenants["northwind-ai"], tenants["helios-labs"]
    leases_before = Lease.objects.count()

    # Northwind's first term on campus 1, renewed on the same nodes 100 days ago; the first
    # term expired 60 days ago and handed its nodes to the renewal (the demo's expired lease).
    first = Lease.objects.filter(reference="demo:northwind-campus1-term1").first()
    if first is None:
        with transaction.atomic():
            first = _signed_lease(
                reference="demo:northwind-campus1-term1",
                tenant=northwind,
                lines=_lines("campus-1", CAMPUS1_SHARES["northwind-ai"], rents["northwind-ai"]),
                commencement_date=today - 240 * DAY,
                now=now,
            )
    if not Lease.objects.filter(reference="demo:northwind-campus1-term2").exists():
        replay_boundaries(until=now - 100 * DAY)  # the first term is running when renewed
        with transaction.atomic():
            services.lease_renew(
                lease=Lease.objects.get(pk=first.pk),
                reference="demo:northwind-campus1-term2",
                now=now - 100 * DAY,
            )
    done()
    with transaction.atomic():
        if not Lease.objects.filter(reference="demo:helios-campus1").exists():
            _signed_lease(
                reference="demo:helios-campus1",
                tenant=helios,
                lines=_lines("campus-1", CAMPUS1_SHARES["helios-labs"], rents["helios-labs"]),
                commencement_date=today - 100 * DAY,
                now=now,
            )
    done()
    with transaction.atomic():
        if not Lease.objects.filter(reference="demo:northwind-campus3-scheduled").exists():
            _signed_lease(
                reference="demo:northwind-campus3-scheduled",
                tenant=northwind,
                lines=_lines("campus-3", Decimal("0.25"), None),
                commencement_date=today + 21 * DAY,
                now=now,
            )
    done()
    if not Lease.objects.filter(reference="demo:helios-campus2-notice").exists():
        with transaction.atomic():
            lease = _signed_lease(
                reference="demo:helios-campus2-notice",
                tenant=helios,
                lines=_lines("campus-2", Decimal("0.40"), None),
                commencement_date=today - 30 * DAY,
                now=now,
            )
        # The lease is running, and its phased hand-over under way, when notice is given.
        replay_boundaries(until=now - 5 * DAY)
        created |= acceptance.seed_demo_handover(now=now - 5 * DAY)
        with transaction.atomic():
            notices.notice_give(
                lease=lease,
                party=Party.TENANT,
                reason="Consolidating training on our own campus.",
                now=now - 5 * DAY,
            )
    done()
    # A spot lease with five days' notice: the billing demo has its tenant give notice after the
    # month is invoiced, which is how a credit note arises (a 90-day notice always ends in a
    # month not yet invoiced, since invoices go out a week ahead).
    with transaction.atomic():
        if not Lease.objects.filter(reference=SPOT_REFERENCE).exists():
            _signed_lease(
                reference=SPOT_REFERENCE,
                tenant=helios,
                lines=_lines("campus-3", Decimal("0.10"), None),
                commencement_date=today - 40 * DAY,
                notice_days=5,
                now=now,
            )
    done()
    # Settle every boundary up to now, each at its instant (activations, the first term's
    # expiry and handover).
    replay_boundaries(until=now)
    created["leases"] = Lease.objects.count() - leases_before
    done()

    with transaction.atomic():
        for cluster, share in _listing_clusters():
            title = f"{cluster.name} — {cluster.accelerator.name} ({cluster.site.slug})"
            if Listing.objects.filter(title=title).exists():
                continue
            free = len(allocation.free_node_ids(cluster.pk, now, now + 180 * DAY, now=now))
            count = max(1, int(free * share))
            Listing.objects.create(
                title=title,
                cluster=cluster,
                node_count=count,
                earliest_start=today + DAY,
                monthly_rate_per_node=_market_monthly(cluster, 1),
                contract_timezone=TZ,
                status=ListingStatus.PUBLISHED,
                visibility=ListingVisibility.PUBLIC,
            )
            created["listings"] += 1
    done()
    return created


def replay_boundaries(*, until: dt.datetime) -> None:
    """Run the boundary job at every instant before `until` where a demo lease has a boundary
    (commencement, end, end of the drain grace, a notice's effective end), in time order, then
    at `until`. Each instant settles what is due then and nothing later, so a back-dated lease
    activates at its commencement; instants already settled find nothing to do."""
    acceptance.demo_accept_on_time(now=until)  # rent follows accepted nodes
    instants: set[dt.datetime] = set()
    for lease in Lease.objects.filter(reference__startswith="demo:"):
        end = lease.end
        instants |= {lease.commencement, end, end + dt.timedelta(hours=lease.drain_grace_hours)}
    instants.update(
        Notice.objects.filter(
            lease__reference__startswith="demo:", status=NoticeStatus.RECORDED
        ).values_list("effective_end", flat=True)
    )
    for instant in sorted(i for i in instants if i < until):
        boundaries.process_boundaries(now=instant)
    boundaries.process_boundaries(now=until)


def _listing_clusters() -> list[tuple[Cluster, Decimal]]:
    """What is left to offer publicly: part of the free capacity of three halls."""
    wanted = [("c1-h100", Decimal("1")), ("c2-gb200", Decimal("0.5")), ("c3-b200", Decimal("0.5"))]
    clusters = {
        c.slug: c
        for c in Cluster.objects.filter(slug__in=[s for s, _ in wanted]).select_related(
            "site", "accelerator"
        )
    }
    return [(clusters[slug], share) for slug, share in wanted if slug in clusters]
