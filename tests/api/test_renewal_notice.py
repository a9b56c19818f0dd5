"""A notice that ends a renewed lease early cancels the renewal: the answer and the quote say
which renewal (docs/rules/lease.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leasing import services

from .conftest import tomorrow

pytestmark = pytest.mark.django_db


def test_the_answer_and_the_quote_name_the_renewal_a_notice_cancels(
    api_a, tenant_a, listing, operator
):
    lease = services.lease_request(
        tenant=tenant_a, listing=listing, node_count=4, commencement_date=tomorrow()
    )
    lease = services.lease_approve(lease=lease, actor=operator)
    successor = services.lease_renew(lease=lease, actor=operator)
    today = timezone.now().astimezone(dt.UTC).date()
    quote_url = f"/api/v1/leases/{lease.pk}/termination-quote/"

    quote = api_a.get(quote_url, {"notice_date": today.isoformat()}).json()
    assert (quote["outcome"], quote["cancels_successor"]) == ("ends", successor.pk)
    late = lease.term_end.date() - dt.timedelta(days=5)
    moot = api_a.get(quote_url, {"notice_date": late.isoformat()}).json()
    assert (moot["outcome"], moot["cancels_successor"]) == ("moot", None)

    answer = api_a.post(f"/api/v1/leases/{lease.pk}/notices/", {}, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["cancels_successor"] == successor.pk
    detail = api_a.get(f"/api/v1/leases/{lease.pk}/").json()
    assert [n["cancels_successor"] for n in detail["notices"]] == [successor.pk]
    renewal = api_a.get(f"/api/v1/leases/{successor.pk}/").json()
    assert renewal["end"] == renewal["commencement"]  # it holds nothing any more


def test_a_lease_without_renewal_cancels_nothing(api_a, world_a):
    lease = world_a["lease"]
    notices = api_a.get(f"/api/v1/leases/{lease.pk}/notices/").json()["results"]
    assert notices
    assert {n["cancels_successor"] for n in notices} == {None}
