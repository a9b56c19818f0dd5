"""Factories for leasing rows written directly (bypassing services) for tests that need state.

Tests of the rules go through `leasing.services`; these factories only set up rows.
"""

import datetime as dt
from decimal import Decimal

import factory

from common.contract_time import local_midnight
from leasing.choices import LeaseStatus
from leasing.models import Lease, LeaseLine, Listing, Tenant

from .clusters import ClusterFactory


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Lab {n}")
    slug = factory.Sequence(lambda n: f"lab-{n}")
    billing_email = factory.LazyAttribute(lambda o: f"billing@{o.slug}.example")


class ListingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Listing

    title = factory.Sequence(lambda n: f"Listing {n}")
    cluster = factory.SubFactory(ClusterFactory)
    node_count = 10
    earliest_start = dt.date(2026, 1, 1)
    monthly_rate_per_node = Decimal("100000.00")
    status = "published"


class LeaseFactory(factory.django.DjangoModelFactory):
    """A lease with its dates computed from `commencement_date` in `contract_timezone`."""

    class Meta:
        model = Lease

    number = factory.Sequence(lambda n: f"L-TEST-{n:05d}")
    tenant = factory.SubFactory(TenantFactory)
    status = LeaseStatus.ACTIVE
    contract_timezone = "UTC"
    commencement_date = dt.date(2026, 1, 1)
    term_days = 180
    notice_days = 90
    commencement = factory.LazyAttribute(
        lambda o: local_midnight(o.commencement_date, o.contract_timezone)
    )
    term_end = factory.LazyAttribute(
        lambda o: local_midnight(
            o.commencement_date + dt.timedelta(days=o.term_days), o.contract_timezone
        )
    )


class LeaseLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LeaseLine

    lease = factory.SubFactory(LeaseFactory)
    cluster = factory.SubFactory(ClusterFactory)
    node_count = 10
    monthly_rate = Decimal("1250000000.00")


class UserFactory(factory.django.DjangoModelFactory):
    """A Django user (operator staff with `is_staff=True`, or a tenant's member)."""

    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw")


def published_listing(cluster, **kwargs) -> Listing:
    """A public, published listing of `cluster` (defaults: whole cluster, from 2026-01-01)."""
    kwargs.setdefault("node_count", cluster.nodes.count())
    return ListingFactory(cluster=cluster, **kwargs)
