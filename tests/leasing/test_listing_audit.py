"""Every operator write records who did it: listing publish and withdraw, like lease moves."""

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from common.exceptions import TransitionNotAllowed
from leasing import services
from leasing.choices import ListingEventKind, ListingStatus
from leasing.models import ListingEvent
from tests.factories.leasing import ListingFactory, UserFactory

from .conftest import at

pytestmark = pytest.mark.django_db


def trail(listing):
    return list(
        ListingEvent.objects.filter(listing=listing)
        .order_by("pk")
        .values_list("kind", "from_status", "to_status", "actor__username", "at")
    )


def test_publish_and_withdraw_record_who_when_and_the_move(cluster):
    ops = UserFactory(username="ops", is_staff=True)
    listing = ListingFactory(cluster=cluster, status=ListingStatus.DRAFT)
    services.listing_publish(listing=listing, actor=ops, now=at(2026, 1, 5, 9))
    services.listing_withdraw(listing=listing, actor=ops, now=at(2026, 2, 1, 17))
    services.listing_publish(listing=listing, now=at(2026, 3, 1))  # no user: the system
    assert trail(listing) == [
        (ListingEventKind.PUBLISHED, "draft", "published", "ops", at(2026, 1, 5, 9)),
        (ListingEventKind.WITHDRAWN, "published", "withdrawn", "ops", at(2026, 2, 1, 17)),
        (ListingEventKind.PUBLISHED, "withdrawn", "published", None, at(2026, 3, 1)),
    ]


def test_a_refused_move_records_nothing(cluster):
    listing = ListingFactory(cluster=cluster, status=ListingStatus.PUBLISHED)
    with pytest.raises(TransitionNotAllowed):
        services.listing_publish(listing=listing, actor=UserFactory(), now=at(2026, 1, 5))
    assert trail(listing) == []


def test_admin_actions_record_the_staff_user_and_the_page_shows_it(client, cluster):
    ops = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client.force_login(ops)
    listing = ListingFactory(cluster=cluster, title="Campus 1 H100", status=ListingStatus.DRAFT)
    changelist = reverse("admin:leasing_listing_changelist")
    for action in ("publish", "withdraw"):
        response = client.post(
            changelist, {"action": action, helpers.ACTION_CHECKBOX_NAME: [listing.pk]}
        )
        assert response.status_code == 302
    assert [(kind, user) for kind, _, _, user, _ in trail(listing)] == [
        (ListingEventKind.PUBLISHED, "ops"),
        (ListingEventKind.WITHDRAWN, "ops"),
    ]
    page = client.get(reverse("admin:leasing_listing_change", args=[listing.pk]))
    body = page.content.decode()
    assert body.count("by ops") == 2
    assert "Withdrawn" in body
