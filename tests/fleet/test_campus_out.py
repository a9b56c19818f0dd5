"""A campus with no running node leaves the fleet scenario consistent (the dashboard's cross-
campus assessment used to fail on links to a campus without a pool). The browser test
tests/browser/test_campus_down.py opens every operator page in that state."""

import pytest

from clusters.demo import seed_inventory
from clusters.models import Node
from clusters.services import scenario_document

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["maintenance", "down"])
@pytest.mark.parametrize("campus", ["campus-1", "campus-2", "campus-3"])
def test_the_dashboard_answers_with_a_whole_campus_out(admin_client, campus, status):
    seed_inventory(scale=0.002)
    Node.objects.filter(cluster__site__slug=campus).update(status=status)
    document = scenario_document()
    sites = {pool["site"] for pool in document["pools"]}
    assert campus not in sites
    assert all(link["a"] in sites and link["b"] in sites for link in document["links"])
    response = admin_client.get("/operator/")
    assert response.status_code == 200
    assert b"GPUs in the fleet" in response.content
