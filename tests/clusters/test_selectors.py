"""Computed inventory figures: GPUs per site and model, peak PFLOP/s."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters import selectors
from tests.factories.clusters import SiteFactory, accelerator, cluster_with_nodes

pytestmark = pytest.mark.django_db


def test_site_and_model_figures(django_assert_num_queries):
    site = SiteFactory()
    cluster_with_nodes(3, site=site, accelerator=accelerator("h100"), gpus_per_node=8)
    cluster_with_nodes(2, site=site, accelerator=accelerator("gb200"), gpus_per_node=72)
    other = SiteFactory()
    cluster_with_nodes(1, site=other, accelerator=accelerator("a100"), gpus_per_node=8)

    with django_assert_num_queries(1):
        rows = {s.pk: s for s in selectors.site_list()}
    assert rows[site.pk].gpu_total == 3 * 8 + 2 * 72
    assert rows[site.pk].node_total == 5
    assert rows[site.pk].cluster_total == 2
    assert rows[site.pk].peak_pflops == pytest.approx((24 * 989 + 144 * 2500) / 1000)
    assert rows[other.pk].gpu_total == 8

    by_model = {a.slug: a.gpu_total for a in selectors.accelerator_list()}
    assert by_model == {"h100": 24, "gb200": 144, "a100": 8, "h200": 0, "b200": 0, "v100": 0}

    with django_assert_num_queries(1):
        table = selectors.capacity_by_site_and_model()
    assert {(r["site_slug"], r["accelerator_slug"], r["gpus"]) for r in table} == {
        (site.slug, "h100", 24),
        (site.slug, "gb200", 144),
        (other.slug, "a100", 8),
    }


def test_empty_site_has_zero_capacity():
    site = SiteFactory()
    row = selectors.site_list().get(pk=site.pk)
    assert (row.gpu_total, row.node_total, row.peak_pflops) == (0, 0, 0)
    assert row.cluster_total == 0


def test_counting_the_site_list_reads_no_node():
    """The admin counts the list twice per page: the figures are subqueries, not aggregates over
    a join, so those counts leave them out and never scan the nodes (at 10× the demo's fleet
    the two counts took 0.7 s of a 1.0 s page)."""
    site = SiteFactory()
    cluster_with_nodes(2, site=site, accelerator=accelerator("h100"), gpus_per_node=8)
    with CaptureQueriesContext(connection) as queries:
        assert selectors.site_list().count() == 1
    (count,) = queries.captured_queries
    assert "clusters_node" not in count["sql"]
    assert selectors.site_list().get().cluster_total == 1
