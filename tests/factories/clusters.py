"""Factories for the inventory."""

import factory

from clusters.models import AcceleratorModel, Cluster, Node, Site, SiteLink


def accelerator(slug: str = "h100") -> AcceleratorModel:
    """A catalog accelerator (loaded by migration clusters.0002)."""
    return AcceleratorModel.objects.get(slug=slug)


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Campus {n}")
    slug = factory.Sequence(lambda n: f"campus-{n}")
    latitude = 41.9
    longitude = -87.6
    timezone = "UTC"
    power_mw = 300.0


class SiteLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SiteLink

    site_a = factory.SubFactory(SiteFactory)
    site_b = factory.SubFactory(SiteFactory)
    route_km = 25.0
    bandwidth_gbps = 400.0
    commissioned_year = 2012

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        obj = model_class(*args, **kwargs)
        obj.order_pair()
        obj.save()
        return obj


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"pool-{n}")
    slug = factory.Sequence(lambda n: f"pool-{n}")
    accelerator = factory.LazyFunction(accelerator)
    gpus_per_node = 8
    fabric_gbps_per_gpu = 400.0


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    cluster = factory.SubFactory(ClusterFactory)
    hostname = factory.Sequence(lambda n: f"node-{n:06d}")


def cluster_with_nodes(count: int, **kwargs) -> Cluster:
    """A cluster with `count` active nodes, created in one bulk insert."""
    cluster = ClusterFactory(**kwargs)
    Node.objects.bulk_create(
        Node(cluster=cluster, hostname=f"{cluster.slug}-n{i:05d}") for i in range(count)
    )
    return cluster
