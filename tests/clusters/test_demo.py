"""The demo inventory tells the motivating story, and seeding twice changes nothing."""

import math

import pytest
from django.core.management import call_command

from clusters import selectors
from clusters.demo import CLUSTERS, seed_inventory
from clusters.models import Cluster, Node, Site, SiteLink

pytestmark = pytest.mark.django_db


def km_between(a: Site, b: Site) -> float:
    """Great-circle distance (haversine), km."""
    la1, lo1, la2, lo2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def test_full_scale_plan_matches_the_story():
    gpus = {}
    for spec in CLUSTERS:
        gpus.setdefault(spec.site, {})[spec.accelerator] = spec.nodes * spec.gpus_per_node
    assert 190_000 <= sum(gpus["campus-1"].values()) <= 210_000
    assert set(gpus["campus-1"]) == {"h100", "h200", "gb200", "a100"}
    assert set(gpus["campus-2"]) | set(gpus["campus-3"]) <= {"b200", "gb200"}
    assert len(gpus["campus-2"]) == len(gpus["campus-3"]) == 1


def test_seed_builds_three_metro_campuses_with_old_links_and_one_modern():
    seed_inventory(scale=0.01)
    sites = list(Site.objects.order_by("slug"))
    assert [s.slug for s in sites] == ["campus-1", "campus-2", "campus-3"]
    for i, a in enumerate(sites):
        for b in sites[i + 1 :]:
            assert 15 <= km_between(a, b) <= 30, (a.slug, b.slug)
    bandwidths = sorted(link.bandwidth_gbps for link in SiteLink.objects.all())
    assert len(bandwidths) == 3
    assert all(100 <= bw < 1000 for bw in bandwidths[:2]), "aging links: hundreds of Gbit/s"
    assert bandwidths[2] >= 3200, "one modern link"
    assert Cluster.objects.count() == len(CLUSTERS)
    assert Node.objects.count() == sum(max(1, round(c.nodes * 0.01)) for c in CLUSTERS)


def test_seed_is_idempotent():
    first = seed_inventory(scale=0.01)
    counts = (
        Site.objects.count(),
        SiteLink.objects.count(),
        Cluster.objects.count(),
        Node.objects.count(),
    )
    second = seed_inventory(scale=0.01)
    assert first["nodes"] > 0
    assert second == {"sites": 0, "links": 0, "clusters": 0, "nodes": 0}
    assert counts == (
        Site.objects.count(),
        SiteLink.objects.count(),
        Cluster.objects.count(),
        Node.objects.count(),
    )


def test_seed_command_reports_progress_and_summary(capsys):
    call_command("seed_demo", "--scale", "0.005")
    out, err = capsys.readouterr()
    assert "Demo data ready" in out
    assert "nodes" in err, "a progress bar on stderr"
    first_campus = selectors.site_list().get(slug="campus-1")
    expected = sum(
        max(1, round(c.nodes * 0.005)) * c.gpus_per_node for c in CLUSTERS if c.site == "campus-1"
    )
    assert first_campus.gpu_total == expected


def test_seed_command_rejects_a_bad_scale():
    from django.core.management.base import CommandError

    for bad in ("0", "10.5"):
        with pytest.raises(CommandError):
            call_command("seed_demo", "--scale", bad)
    assert Site.objects.count() == 0


def test_fiber_routes_are_longer_than_the_straight_line():
    seed_inventory(scale=0.01)
    for link in SiteLink.objects.select_related("site_a", "site_b"):
        ratio = link.route_km / km_between(link.site_a, link.site_b)
        assert 1.2 <= ratio <= 2.0, (str(link), ratio)
