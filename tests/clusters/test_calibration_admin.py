"""Calibrations in the admin: listed and shown with their evidence to who may view them, and
never added, changed or deleted there."""

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from clusters import calibrations
from clusters.demo import seed_inventory
from clusters.models import Cluster, SiteLink
from clusters.perfmodel import link

pytestmark = pytest.mark.django_db

NCCL = (Path(__file__).resolve().parents[1] / "perfmodel" / "data").joinpath(
    "nccl_all_reduce_perf_2x8_h100.txt"
)
MEASURED = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def recorded():
    """One cluster calibration (nccl-tests) and one link calibration (harness points)."""
    seed_inventory(scale=0.004)
    ops = get_user_model().objects.create_user("ops", password="x")
    cluster = calibrations.cluster_calibration_record(
        cluster=Cluster.objects.get(slug="c1-h100"),
        text=NCCL.read_text(),
        ranks=16,
        measured_at=MEASURED,
        actor=ops,
        now=NOW,
        min_bytes=1,
        origin="manage.py calibrate",
    )
    sizes = [2**k for k in range(14, 24, 2)]
    times = link.pipelined_ring_allreduce_s(sizes, 2, 5e7, 0.02, 2)
    site_link = SiteLink.objects.order_by("pk").first()
    lk = calibrations.link_calibration_record(
        link=site_link,
        source="harness",
        ranks=2,
        points=[{"size_bytes": s, "comm_s": float(t)} for s, t in zip(sizes, times, strict=True)],
        measured_at=MEASURED,
        actor=None,
        now=NOW,
        origin="harness run",
    )
    return {"cluster": cluster, "link": lk}


def _client(client, *codenames):
    user = get_user_model().objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def _cluster_page(client, cal):
    """A cluster calibration's page as one who may view it sees it."""
    page = _client(client, "view_clustercalibration").get(
        reverse("admin:clusters_clustercalibration_change", args=[cal.pk])
    )
    assert page.status_code == 200
    return page.content.decode()


def test_the_list_names_the_cluster_and_shows_the_fit(client, recorded):
    cal = recorded["cluster"]
    page = _client(client, "view_clustercalibration").get(
        reverse("admin:clusters_clustercalibration_changelist")
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert str(cal.cluster) in html
    assert "2026-12-01 10:00 UTC" in html
    assert f"{cal.usable_gbps:,.1f}" in html
    assert "Bus bandwidth (Gbit/s)" in html
    assert 'Step latency (<span class="unit">µs</span>)' in html
    assert "ops on 2026-12-07 12:00 UTC" in html
    assert "manage.py calibrate" in html
    assert "nccl-tests all_reduce_perf" in html
    assert "Add cluster calibration" not in html


def test_the_page_shows_the_points_and_the_chart(client, recorded):
    cal = recorded["cluster"]
    html = _cluster_page(client, cal)
    assert '<svg role="img" aria-label="' in html
    assert "fitted all-reduce time" in html
    assert "currentColor" in html  # the chart follows the theme's text colour
    sizes, measured, predicted = calibrations.predicted_vs_measured(cal)
    assert len(sizes) == cal.points == 31
    assert "8 GiB" in html
    assert "8,589,934,592" in html
    assert f"{measured[-1] * 1e6:,.2f}" in html
    assert f"{predicted[-1] * 1e6:,.2f}" in html
    assert "# Avg bus bandwidth    : 20.3012" in html  # the raw text, columns kept
    # The piecewise fit: its regimes listed, the chart coloured by regime.
    assert len(cal.regimes) > 1
    last = cal.regimes[-1]
    assert "16 MiB – 8 GiB" in html
    assert f"regime {len(cal.regimes)}: 16 MiB – 8 GiB" in html  # the chart's legend
    assert f"{last['usable_gbps']:,.1f}" in html
    assert 'name="_save"' not in html  # read-only: nothing to save
    assert "Delete" not in html


def test_a_calibration_recorded_before_regimes_still_renders(client, recorded):
    cal = recorded["cluster"]
    type(cal).objects.filter(pk=cal.pk).update(regimes=[])
    html = _cluster_page(client, cal)
    assert "one ring over every size" in html
    assert "<svg" in html
    assert "regime 1:" not in html


def test_a_link_calibration_has_its_page_too(client, recorded):
    lk = recorded["link"]
    viewer = _client(client, "view_linkcalibration")
    listing = viewer.get(reverse("admin:clusters_linkcalibration_changelist")).content.decode()
    assert str(lk.link) in listing
    assert "harness run" in listing
    page = viewer.get(reverse("admin:clusters_linkcalibration_change", args=[lk.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html
    assert "All-reduce harness (CSV)" in html
    # The harness's points are fitted with two segments: the fit reproduces them closely.
    _, measured, predicted = calibrations.predicted_vs_measured(lk)
    assert predicted == pytest.approx(measured, rel=0.02)


def test_without_the_view_permission_every_page_is_refused(client, recorded):
    cal = recorded["cluster"]
    viewer = _client(client, "view_linkcalibration")
    assert viewer.get(reverse("admin:clusters_clustercalibration_changelist")).status_code == 403
    change = reverse("admin:clusters_clustercalibration_change", args=[cal.pk])
    assert viewer.get(change).status_code == 403


def test_no_one_adds_changes_or_deletes_a_calibration_here(admin_client, recorded):
    cal = recorded["cluster"]
    change = reverse("admin:clusters_clustercalibration_change", args=[cal.pk])
    assert admin_client.get(reverse("admin:clusters_clustercalibration_add")).status_code == 403
    assert admin_client.post(change, {"usable_gbps": "1"}).status_code == 403
    delete = reverse("admin:clusters_clustercalibration_delete", args=[cal.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    cal.refresh_from_db()
    assert cal.usable_gbps > 1
