"""Shared constants have one definition, so the API, reclaim and the leasing rules agree."""

from leasing import services
from leasing.api import filters, selectors, serializers
from reclaim import selectors as reclaim_selectors


def test_signed_statuses_are_the_leasing_services_ones():
    assert selectors.SIGNED is services.SIGNED
    assert reclaim_selectors.SIGNED is services.SIGNED


def test_the_id_bound_is_defined_once():
    assert filters.MAX_ID is serializers.MAX_ID == 2**63 - 1
