"""Every inventory rule that must never be false is refused by the database itself."""

import pytest
from django.db import IntegrityError, transaction

from clusters.models import AcceleratorModel, Cluster, Node, Site, SiteLink
from tests.factories.clusters import ClusterFactory, NodeFactory, SiteFactory, accelerator

pytestmark = pytest.mark.django_db


def rejected(write) -> bool:
    """True if the database refused `write` (run in its own savepoint)."""
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


def test_accelerator_figures_must_be_positive():
    base = {
        f.name: getattr(accelerator("h100"), f.name)
        for f in AcceleratorModel._meta.concrete_fields
        if f.name not in {"id", "name", "slug"}
    }
    for field in ("peak_tflops", "hbm_gb", "scaleout_gbps", "mtbf_hours"):
        row = {**base, "name": f"bad-{field}", "slug": f"bad-{field}", field: 0}
        assert rejected(lambda row=row: AcceleratorModel.objects.create(**row)), field
    too_high_mfu = {**base, "name": "mfu", "slug": "mfu", "reference_mfu": 1.5}
    assert rejected(lambda: AcceleratorModel.objects.create(**too_high_mfu))
    negative_price = {**base, "name": "p", "slug": "p", "market_price_per_gpu_hour": -1}
    assert rejected(lambda: AcceleratorModel.objects.create(**negative_price))
    assert AcceleratorModel.objects.count() == 6


def test_site_coordinates_and_power_are_checked():
    assert rejected(lambda: SiteFactory(latitude=91))
    assert rejected(lambda: SiteFactory(longitude=-181))
    assert rejected(lambda: SiteFactory(power_mw=0))
    assert Site.objects.count() == 0


def test_a_link_joins_two_different_sites_once():
    a, b = SiteFactory(), SiteFactory()
    low, high = sorted((a, b), key=lambda s: s.pk)

    def link(x, y):
        return SiteLink.objects.create(
            site_a=x, site_b=y, route_km=20, bandwidth_gbps=400, commissioned_year=2010
        )

    assert rejected(lambda: link(a, a)), "a site cannot link to itself"
    assert rejected(lambda: link(high, low)), "pairs are stored lower id first"
    link(low, high)
    assert rejected(lambda: link(low, high)), "the same pair twice"
    assert SiteLink.objects.count() == 1


def test_link_figures_are_checked():
    a, b = sorted((SiteFactory(), SiteFactory()), key=lambda s: s.pk)
    for bad in ({"efficiency": 0}, {"efficiency": 1.2}, {"route_km": 0}, {"loss_rate": 1.0}):
        fields = {"route_km": 20, "bandwidth_gbps": 400, "commissioned_year": 2010, **bad}
        assert rejected(lambda f=fields: SiteLink.objects.create(site_a=a, site_b=b, **f)), bad


def test_link_clean_orders_the_pair_and_refuses_a_self_link():
    from django.core.exceptions import ValidationError

    a, b = SiteFactory(), SiteFactory()
    low, high = sorted((a, b), key=lambda s: s.pk)
    link = SiteLink(
        site_a=high, site_b=low, route_km=20, bandwidth_gbps=400, commissioned_year=2010
    )
    link.full_clean()
    link.save()
    assert (link.site_a_id, link.site_b_id) == (low.pk, high.pk)
    with pytest.raises(ValidationError):
        SiteLink(
            site_a=a, site_b=a, route_km=1, bandwidth_gbps=1, commissioned_year=2000
        ).full_clean()


def test_cluster_counts_positive_and_names_unique_per_site():
    cluster = ClusterFactory()
    assert rejected(lambda: ClusterFactory(gpus_per_node=0))
    assert rejected(lambda: ClusterFactory(fabric_gbps_per_gpu=0))
    assert rejected(lambda: ClusterFactory(site=cluster.site, name=cluster.name))
    assert Cluster.objects.count() == 1


def test_hostnames_are_unique_fleet_wide():
    node = NodeFactory()
    assert rejected(lambda: NodeFactory(hostname=node.hostname))
    assert Node.objects.count() == 1


def test_one_way_latency_is_propagation_plus_equipment():
    link = SiteLink(route_km=100.0, equipment_latency_us=20.0)
    assert link.one_way_latency_us == pytest.approx(100 * 4.9 + 20)


def test_usable_throughput_is_capped_by_the_bandwidth_delay_product():
    # 41 km + 30 µs: one way 230.9 µs, RTT 461.8 µs; 4 flows × 2 MiB / RTT ≈ 145 Gbit/s.
    aging = SiteLink(
        route_km=41.0,
        equipment_latency_us=30.0,
        bandwidth_gbps=200.0,
        efficiency=0.8,
        window_bytes=2 * 2**20,
        streams=4,
    )
    rtt_s = 2 * (41.0 * 4.9 + 30.0) * 1e-6
    assert aging.usable_gbps == pytest.approx(4 * 2 * 2**20 * 8 / rtt_s / 1e9)
    assert aging.usable_gbps < 200 * 0.8, "latency-bound below the line rate"
    modern = SiteLink(
        route_km=27.0,
        equipment_latency_us=10.0,
        bandwidth_gbps=6400.0,
        efficiency=0.92,
        window_bytes=256 * 2**20,
        streams=64,
    )
    assert modern.usable_gbps == pytest.approx(6400 * 0.92), "bandwidth-bound"
