"""Calibrations from measured all-reduce times: recorded with their data, latest one scores."""

import datetime as dt
import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from clusters import calibrations
from clusters.demo import seed_inventory
from clusters.models import Cluster, ClusterCalibration, LinkCalibration, SiteLink
from clusters.perfmodel import Scenario, link
from clusters.services import scenario_document
from tests.factories.nccl import scaled_sample

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[1] / "perfmodel" / "data"
NCCL = (DATA / "nccl_all_reduce_perf_2x8_h100.txt").read_text()
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def fleet():
    seed_inventory(scale=0.004)


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("ops", password="x")


def _nccl_text(busbw_gbs, alpha_us, ranks):
    """all_reduce_perf output of an exact α-β ring (current layout)."""
    lines = [
        "#       size         count      type   redop    root     time   algbw   busbw #wrong"
        "     time   algbw   busbw #wrong",
    ]
    factor = 2 * (ranks - 1) / ranks
    for k in range(20, 31):
        size = 2**k
        t_us = 2 * (ranks - 1) * alpha_us + factor * size / (busbw_gbs * 1e3)
        algbw = size / t_us / 1e3
        cols = f"{t_us:.1f} {algbw:.2f} {algbw * factor:.2f} 0"
        lines.append(f"{size} {size // 4} float sum -1 {cols} {cols}")
    return "\n".join(lines) + "\n"


def _harness_points(alpha_s, usable, ranks=2, comm_factor=1.0):
    sizes = [2**k for k in range(14, 24, 2)]
    t = link.pipelined_ring_allreduce_s(sizes, ranks, usable, alpha_s, 2) * comm_factor
    return [{"size_bytes": s, "comm_s": float(x)} for s, x in zip(sizes, t, strict=True)]


def _record(lk, operator, when, alpha_s=0.02, usable=5e7):
    return calibrations.link_calibration_record(
        link=lk,
        source="harness",
        ranks=2,
        points=_harness_points(alpha_s, usable),
        measured_at=when,
        actor=operator,
        now=NOW,
    )


def test_nccl_output_is_fitted_and_kept_with_its_data(fleet, operator):
    lk = SiteLink.objects.first()
    cal = calibrations.link_calibration_record(
        link=lk,
        source="nccl_tests",
        ranks=16,
        text=NCCL,
        min_bytes=64 << 20,
        measured_at=NOW - dt.timedelta(days=1),
        actor=operator,
        now=NOW,
    )
    cal.refresh_from_db()
    assert cal.points == 8 == len(cal.data)
    assert cal.data[0]["size_bytes"] == 64 << 20
    assert cal.raw == NCCL
    assert cal.created_by == operator
    # Large messages approach 54.7 GB/s of bus bandwidth: the fitted per-link rate.
    assert cal.usable_gbps / 8 == pytest.approx(55, rel=0.05)
    assert 10 < cal.step_latency_us < 40
    assert cal.max_rel_error < 0.02
    assert len(cal.regimes) == 1  # from 64 MiB up one ring follows the curve


def test_a_whole_nccl_run_is_stored_with_its_regimes(fleet, operator):
    cal = calibrations.cluster_calibration_record(
        cluster=Cluster.objects.get(slug="c1-h100"),
        text=NCCL,
        ranks=16,
        measured_at=NOW,
        actor=operator,
        now=NOW,
    )
    cal.refresh_from_db()
    sizes, measured, predicted = calibrations.predicted_vs_measured(cal)
    assert sizes[0] == cal.regimes[0]["min_bytes"] == 8
    assert sizes[-1] == cal.regimes[-1]["max_bytes"] == 8 << 30
    assert [r["min_bytes"] for r in cal.regimes] == sorted(r["min_bytes"] for r in cal.regimes)
    assert sum(r["points"] for r in cal.regimes) == cal.points == len(sizes)
    # The model's figures: the smallest sizes' latency, the largest sizes' bandwidth.
    assert cal.step_latency_us == cal.regimes[0]["step_latency_us"]
    assert cal.usable_gbps == cal.regimes[-1]["usable_gbps"]
    # The stored errors are the piecewise prediction's, drawn point by point.
    err = sorted(abs(p - m) / m for m, p in zip(measured, predicted, strict=True))
    assert cal.max_rel_error == pytest.approx(err[-1])
    assert cal.median_rel_error == pytest.approx(err[len(err) // 2])
    assert cal.median_rel_error <= 0.05
    assert cal.max_rel_error <= 0.15
    ring = calibrations.one_ring(cal)
    assert ring.max_rel_error > 0.5 > cal.max_rel_error  # what a single ring would miss
    # A row without regimes (recorded before they were stored) is predicted by its one ring.
    ClusterCalibration.objects.filter(pk=cal.pk).update(regimes=[])
    cal.refresh_from_db()
    assert calibrations.one_ring(cal) is None
    _, _, one = calibrations.predicted_vs_measured(cal)
    expected = link.pipelined_ring_allreduce_s(
        sizes, 16, cal.usable_gbps * 1e9 / 8, cal.step_latency_us * 1e-6
    )
    assert one == pytest.approx(list(expected))


def test_a_harness_calibration_is_one_ring(fleet, operator):
    cal = _record(SiteLink.objects.first(), operator, NOW)
    assert cal.regimes == []


def test_cluster_calibration_replaces_the_nominal_fabric(fleet, operator):
    cluster = Cluster.objects.get(slug="c1-h100")
    before = {p["name"]: p for p in scenario_document()["pools"]}["c1-h100"]
    calibrations.cluster_calibration_record(
        cluster=cluster,
        text=_nccl_text(busbw_gbs=30.0, alpha_us=12.0, ranks=16),
        ranks=16,
        measured_at=NOW,
        actor=operator,
        now=NOW,
    )
    after = {p["name"]: p for p in scenario_document()["pools"]}["c1-h100"]
    assert before["fabric_gbps_per_gpu"] == 400
    assert after["fabric_gbps_per_gpu"] == pytest.approx(30 * 8, rel=0.01)
    cal = ClusterCalibration.objects.get()
    assert cal.step_latency_us == pytest.approx(12.0, rel=0.02)
    assert cal.cluster == cluster


def test_the_latest_measurement_scores_whatever_the_recording_order(fleet, operator):
    lk = SiteLink.objects.first()
    _record(lk, operator, NOW - dt.timedelta(days=1), alpha_s=0.010, usable=8e7)
    _record(lk, operator, NOW - dt.timedelta(days=3), alpha_s=0.030, usable=2e7)  # older
    doc = scenario_document()
    entry = next(x for x in doc["links"] if x["a"] == lk.site_a.slug and x["b"] == lk.site_b.slug)
    assert entry["step_latency_us"] == pytest.approx(10_000, rel=0.02)
    assert entry["usable_gbps"] == pytest.approx(0.64, rel=0.02)
    others = [x for x in doc["links"] if x is not entry]
    assert all(x["step_latency_us"] is None and x["usable_gbps"] is None for x in others)
    scenario = Scenario.from_dict(doc)
    assert any(lnk.usable_gbps is not None for lnk in scenario.links)


def test_calibrations_cost_no_extra_query(fleet, operator, django_assert_num_queries):
    for lk in SiteLink.objects.all():
        _record(lk, operator, NOW)
    with django_assert_num_queries(2):
        scenario_document()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"source": "nccl_tests", "text": "not a table"}, calibrations.CalibrationUnreadable),
        ({"source": "carrier_pigeon", "text": NCCL}, calibrations.CalibrationUnreadable),
        ({"source": "harness", "points": []}, calibrations.CalibrationUnreadable),
        (
            {"source": "harness", "points": [{"size_bytes": 10, "comm_s": 0.1}] * 3},
            calibrations.CalibrationUnfit,
        ),
        ({"source": "nccl_tests", "text": NCCL, "ranks": 1}, calibrations.CalibrationUnfit),
        (
            {"source": "nccl_tests", "text": NCCL, "ranks": 3_000_000_000},
            calibrations.CalibrationUnfit,
        ),
        (
            {"source": "nccl_tests", "text": scaled_sample(size=10**290)},
            calibrations.CalibrationUnreadable,
        ),
        (
            {"source": "nccl_tests", "text": scaled_sample(size=10**20)},
            calibrations.CalibrationUnreadable,
        ),
        (
            {"source": "nccl_tests", "text": scaled_sample(time=1e300)},
            calibrations.CalibrationUnreadable,
        ),
        (
            {"source": "nccl_tests", "text": scaled_sample(time=1e-300)},
            calibrations.CalibrationUnfit,
        ),
        (
            {"source": "nccl_tests", "text": scaled_sample(size=2**17)},
            calibrations.CalibrationUnfit,
        ),
        (
            {"source": "harness", "points": [{"size_bytes": 10**400, "comm_s": 1.0}] * 3},
            calibrations.CalibrationUnfit,
        ),
        (
            {"source": "harness", "points": _harness_points(0.02, 5e7, comm_factor=1e300)},
            calibrations.CalibrationUnfit,
        ),
        (
            {"source": "nccl_tests", "text": NCCL, "measured_at": NOW + dt.timedelta(hours=1)},
            calibrations.CalibrationInFuture,
        ),
    ],
)
def test_refusals_write_nothing(fleet, operator, kwargs, error):
    args = {
        "link": SiteLink.objects.first(),
        "ranks": 16,
        "measured_at": NOW,
        "actor": operator,
        "now": NOW,
        **kwargs,
    }
    with pytest.raises(error) as exc:
        calibrations.link_calibration_record(**args)
    assert exc.value.code.startswith("calibration_")
    assert not LinkCalibration.objects.exists()


def test_database_refuses_a_calibration_without_a_fit(fleet, operator):
    good = _record(SiteLink.objects.first(), operator, NOW)
    for bad in ({"usable_gbps": 0}, {"ranks": 1}, {"max_rel_error": -1}, {"source": "x"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            LinkCalibration.objects.filter(pk=good.pk).update(**bad)


def test_rendezvous_rtts_replaces_the_integer_field_and_the_old_name_still_works(fleet):
    lk = SiteLink.objects.first()
    lk.handshake_rtts = 1
    assert lk.rendezvous_rtts == 1.0
    lk.rendezvous_rtts = 0.5
    assert lk.handshake_rtts == 0.5
    doc = scenario_document()
    assert {x["rendezvous_rtts"] for x in doc["links"]} <= {0.0, 0.5, 1.0}
    assert all("handshake_rtts" not in x for x in doc["links"])
    made = SiteLink(
        site_a=lk.site_a,
        site_b=lk.site_b,
        route_km=1,
        bandwidth_gbps=1,
        commissioned_year=2020,
        handshake_rtts=2,
    )
    assert made.rendezvous_rtts == 2.0


def test_command_records_a_link_calibration_and_draws_it(fleet, operator, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    lk = SiteLink.objects.select_related("site_a", "site_b").first()
    run = tmp_path / "run.txt"
    run.write_text(_nccl_text(busbw_gbs=5.0, alpha_us=900.0, ranks=2))
    out = io.StringIO()
    plot = tmp_path / "fit.png"
    call_command(
        "calibrate",
        "--link",
        f"{lk.site_b.slug}:{lk.site_a.slug}",
        "--nccl",
        str(run),
        "--ranks",
        "2",
        "--measured-at",
        "2026-12-01T10:00:00+00:00",
        "--user",
        "ops",
        "--plot",
        str(plot),
        stdout=out,
    )
    cal = LinkCalibration.objects.get(link=lk)
    assert cal.usable_gbps == pytest.approx(40.0, rel=0.01)
    assert cal.step_latency_us == pytest.approx(900.0, rel=0.02)
    assert "step latency" in out.getvalue()
    assert "regime 1: 1,048,576–1,073,741,824 B" in out.getvalue()  # one exact ring: one regime
    assert "one ring over every size" not in out.getvalue()
    assert plot.read_bytes()[:4] == b"\x89PNG"
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("no table here\n")
    for nccl, error in ((garbage, "calibration_unreadable"), (tmp_path / "none", "--nccl")):
        with pytest.raises(CommandError, match=error):
            call_command(
                *("calibrate", "--cluster", "c1-h100", "--nccl", str(nccl), "--ranks", "8"),
                *("--measured-at", "2026-12-01T10:00Z", "--user", "ops"),
            )
    assert not ClusterCalibration.objects.exists()
    whole = tmp_path / "whole.txt"
    whole.write_text(NCCL)
    out = io.StringIO()
    call_command(
        *("calibrate", "--cluster", "c1-h100", "--nccl", str(whole), "--ranks", "16"),
        *("--measured-at", "2026-12-01T10:00Z", "--user", "ops"),
        stdout=out,
    )
    printed = out.getvalue()
    cal = ClusterCalibration.objects.get()
    assert printed.count("  regime ") == len(cal.regimes) > 1
    assert f"regime 1: 8–{cal.regimes[0]['max_bytes']:,} B" in printed
    assert "one ring over every size" in printed


@pytest.mark.parametrize(
    ("content", "ranks", "message"),
    [
        (b"\xff\xfe\x00binary", "16", "--nccl: 'utf-8' codec can't decode"),
        (NCCL.encode(), "3000000000", "argument --ranks: at most 10,000,000 ranks"),
        (NCCL.encode(), "1", "argument --ranks: an all-reduce needs at least two ranks"),
        (scaled_sample(size=10**290).encode(), "16", "calibration_unreadable: line 27: size 8000"),
        (scaled_sample(size=10**390).encode(), "16", "calibration_unreadable: .* is above"),
        (scaled_sample(time=1e300).encode(), "16", "calibration_unreadable: .* µs is above"),
        (scaled_sample(time=1e-300).encode(), "16", "calibration_unfit: times must be"),
        (scaled_sample(size=2**17).encode(), "16", "calibration_unfit: fitted usable throughput"),
    ],
)
def test_command_refuses_what_cannot_be_a_run(fleet, operator, tmp_path, content, ranks, message):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    run = tmp_path / "run.txt"
    run.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command(
            *("calibrate", "--cluster", "c1-h100", "--nccl", str(run), "--ranks", ranks),
            *("--measured-at", "2026-12-01T10:00Z", "--user", "ops"),
        )
    assert not ClusterCalibration.objects.exists()


def test_a_run_from_elsewhere_that_cannot_be_fitted_records_nothing(fleet):
    cluster = Cluster.objects.get(slug="c1-h100")
    for text in (
        scaled_sample(time=1e-300),
        scaled_sample(size=2**17),
        scaled_sample(size=10**290),
    ):
        cal = calibrations.cluster_calibration_from_run(
            cluster=cluster, text=text, nodes=2, measured_at=NOW, actor=None, now=NOW, origin="x"
        )
        assert cal is None
    assert not ClusterCalibration.objects.exists()


def test_a_stored_run_beyond_the_bounds_has_no_one_ring_to_compare(fleet):
    cal = calibrations.cluster_calibration_record(
        cluster=Cluster.objects.get(slug="c1-h100"),
        text=NCCL,
        ranks=16,
        measured_at=NOW,
        actor=None,
        now=NOW,
    )
    assert calibrations.one_ring(cal) is not None
    # As recorded before the bounds: sizes of ~10^30 B.
    cal.data = [{**p, "size_bytes": p["size_bytes"] * 10**20} for p in cal.data]
    assert calibrations.one_ring(cal) is None
