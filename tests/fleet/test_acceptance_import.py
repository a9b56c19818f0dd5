"""Importing acceptance results from what tools print: `manage.py import_acceptance`."""

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from clusters import calibrations
from clusters.models import ClusterCalibration, Incident, Node
from clusters.perfmodel import calibration, nccl
from clusters.services import scenario_document
from leasing import acceptance
from leasing.models import AcceptanceRecord, Allocation
from tests.factories.clusters import ClusterFactory, accelerator
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, UserFactory
from tests.factories.nccl import scaled_sample

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent.parent / "perfmodel" / "data" / "nccl_all_reduce_perf_2x8_h100.txt"
AT = "2026-11-05T09:00:00Z"
AT_INSTANT = dt.datetime(2026, 11, 5, 9, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 6, tzinfo=dt.UTC)


@pytest.fixture
def world():
    """Lease with one line of the two H100 nodes the nccl-tests sample ran on, plus a third."""
    cluster = ClusterFactory(accelerator=accelerator("h100"), fabric_gbps_per_gpu=400.0)
    nodes = [Node.objects.create(cluster=cluster, hostname=h) for h in ("node-a01", "node-a02")]
    extra = Node.objects.create(cluster=cluster, hostname="node-a03")
    lease = LeaseFactory(number="L-2026-0042", commencement_date=dt.date(2026, 11, 1))
    line = LeaseLineFactory(
        lease=lease, cluster=cluster, node_count=2, monthly_rate=Decimal("200000.00")
    )
    for n in nodes:
        Allocation.objects.create(
            line=line, node=n, starts_at=lease.commencement, ends_at=lease.term_end
        )
    UserFactory(username="ops", is_staff=True)
    return {"lease": lease, "line": line, "nodes": nodes, "extra": extra}


def _run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    if stdin is not None:
        import sys

        real = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            call_command("import_acceptance", *args, stdout=out)
        finally:
            sys.stdin = real
    else:
        call_command("import_acceptance", *args, stdout=out)
    return out.getvalue()


def test_the_nccl_table_of_a_real_run_accepts_both_hosts(world):
    out = _run(
        str(SAMPLE),
        "--lease",
        "L-2026-0042",
        "--signed-by",
        "ops",
        "--signed-at",
        AT,
        "--batch",
        "rack-a",
    )
    assert "node-a01: passed" in out
    assert "2 records signed by ops: 2 passed, 0 failed." in out
    records = AcceptanceRecord.objects.order_by("node__hostname")
    assert [r.node.hostname for r in records] == ["node-a01", "node-a02"]
    (busbw,) = records[0].tests
    # The 8 GiB row of the table: 54.75 GB/s, against 0.9 × 49.95 predicted for 16 GPUs.
    assert busbw["measured"] == 54.75
    assert busbw["size_bytes"] == 8589934592
    assert busbw["threshold"] == pytest.approx(0.9 * 49.9521603, rel=1e-8)
    assert records[0].source == "nccl-tests"
    assert records[0].signed_by.username == "ops"
    assert "Avg bus bandwidth" in records[0].raw
    assert (
        Allocation.objects.filter(accepted_at=dt.datetime(2026, 11, 5, 9, tzinfo=dt.UTC)).count()
        == 2
    )


def test_the_hosts_of_the_run_are_read_from_its_device_list():
    assert acceptance.nccl_hostnames(SAMPLE.read_text()) == ["node-a01", "node-a02"]


def test_a_json_document_from_stdin_with_a_failed_node(world):
    document = {
        "schema": "landlord.acceptance/1",
        "lease": "L-2026-0042",
        "batch": "rack-b",
        "signed_at": AT,
        "nodes": [
            {
                "hostname": "node-a01",
                "tests": [
                    {"name": "nccl_all_reduce_busbw", "measured": 48.0},
                    {"name": "reference_step_time", "measured": 0.26},
                    {"name": "gpu_burn_in", "measured": 0},
                ],
            },
            {
                "hostname": "node-a02",
                "signed_at": "2026-11-05T10:00:00+01:00",
                "tests": [{"name": "nccl_all_reduce_busbw", "measured": 30.0}],
            },
        ],
    }
    out = _run("-", "--signed-by", "ops", stdin=json.dumps(document))
    assert "node-a01: passed" in out
    assert "node-a02: FAILED (incident" in out
    assert "1 passed, 1 failed" in out
    failed = AcceptanceRecord.objects.get(node__hostname="node-a02")
    assert failed.signed_at == dt.datetime(2026, 11, 5, 9, tzinfo=dt.UTC)
    assert failed.incident.source == "acceptance"
    assert failed.batch == "rack-b"


@pytest.mark.parametrize(
    ("nodes", "names"),
    [
        # An unknown host, a node not on the lease, a naive instant, an unknown test.
        (
            [
                {"hostname": "ghost", "tests": [{"name": "gpu_burn_in", "measured": 0}]},
                {"hostname": "node-a03", "tests": [{"name": "gpu_burn_in", "measured": 0}]},
                {
                    "hostname": "node-a01",
                    "signed_at": "2026-11-05T09:00:00",
                    "tests": [{"name": "gpu_burn_in", "measured": 0}],
                },
                {"hostname": "node-a02", "tests": [{"name": "vibes", "measured": 1}]},
            ],
            [
                "item 0 (ghost): [unknown_node]",
                "item 1 (node-a03): [node_not_allocated]",
                "item 2 (node-a01): [invalid_acceptance]",
                "item 3 (node-a02): [invalid_acceptance]",
            ],
        ),
    ],
)
def test_a_malformed_file_is_refused_whole_naming_each_item(world, tmp_path, nodes, names):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"lease": "L-2026-0042", "signed_at": AT, "nodes": nodes}))
    with pytest.raises(CommandError) as info:
        _run(str(path), "--signed-by", "ops")
    message = str(info.value)
    for name in names:
        assert name in message
    assert not AcceptanceRecord.objects.exists()
    assert not Incident.objects.exists()


def test_one_bad_node_among_good_ones_writes_nothing(world, tmp_path):
    path = tmp_path / "results.json"
    good = {"name": "gpu_burn_in", "measured": 0}
    path.write_text(
        json.dumps(
            {
                "lease": "L-2026-0042",
                "signed_at": AT,
                "nodes": [
                    {"hostname": "node-a01", "tests": [good]},
                    {"hostname": "node-a02", "tests": [good]},
                    {"hostname": "node-a03", "tests": [good]},
                ],
            }
        )
    )
    with pytest.raises(CommandError, match=r"item 2 \(node-a03\): \[node_not_allocated\]"):
        _run(str(path), "--signed-by", "ops")
    assert not AcceptanceRecord.objects.exists()
    assert not Allocation.objects.filter(accepted_at__isnull=False).exists()


def test_bad_invocations(world, tmp_path):
    with pytest.raises(CommandError, match="no operator"):
        _run(str(SAMPLE), "--lease", "L-2026-0042", "--signed-by", "nobody")
    with pytest.raises(CommandError, match="--lease is required"):
        _run(str(SAMPLE), "--signed-by", "ops")
    with pytest.raises(CommandError, match="offset"):
        _run(
            str(SAMPLE),
            "--lease",
            "L-2026-0042",
            "--signed-by",
            "ops",
            "--signed-at",
            "2026-11-05T09:00",
        )
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    with pytest.raises(CommandError, match="no all_reduce_perf result header"):
        _run(str(junk), "--lease", "L-2026-0042", "--signed-by", "ops")
    with pytest.raises(CommandError, match="Not JSON"):
        _run("-", "--signed-by", "ops", stdin="{nope")
    with pytest.raises(CommandError, match="unknown lease"):
        _run(str(SAMPLE), "--lease", "L-1999-0001", "--signed-by", "ops")
    assert not AcceptanceRecord.objects.exists()


def test_a_dry_run_prints_verdicts_and_writes_nothing(world):
    out = _run(
        str(SAMPLE),
        "--lease",
        "L-2026-0042",
        "--hostnames",
        "node-a01,node-a03",
        "--signed-by",
        "ops",
        "--signed-at",
        AT,
        "--step-time",
        "9.9",
        "--dry-run",
    )
    assert "node-a01 (L-2026-0042, line" in out
    assert "would FAIL" in out  # the step time is far over 1.1 × predicted
    assert "node-a03" in out
    assert "REFUSED [node_not_allocated]" in out
    assert "nothing written" in out
    assert not AcceptanceRecord.objects.exists()
    assert not Incident.objects.exists()


def _fabric(cluster) -> float:
    (pool,) = scenario_document(clusters=[cluster])["pools"]
    return pool["fabric_gbps_per_gpu"]


def test_an_uploaded_run_calibrates_its_cluster_and_the_latest_scores(world):
    text = SAMPLE.read_text()
    cluster = world["line"].cluster
    _run(str(SAMPLE), "--lease", "L-2026-0042", "--signed-by", "ops", "--signed-at", AT)
    cal = ClusterCalibration.objects.get()
    rows = nccl.parse_all_reduce_perf(text)
    direct = calibration.fit_nccl(rows, ranks=16)
    assert (cal.cluster, cal.ranks, cal.points) == (cluster, 16, direct.points)
    assert cal.usable_gbps == direct.usable_gbps
    assert cal.step_latency_us == direct.step_latency_us
    assert cal.median_rel_error == direct.median_rel_error
    # Fitted piecewise, its regimes stored: more than one ring, the largest sizes last.
    assert cal.regimes == [r.as_dict() for r in direct.regimes]
    assert len(cal.regimes) > 1
    assert cal.regimes[-1]["max_bytes"] == rows[-1].size_bytes
    assert cal.data == [r.as_dict() for r in rows]
    assert cal.raw == text
    assert cal.measured_at == AT_INSTANT
    assert cal.created_by.username == "ops"
    records = AcceptanceRecord.objects.order_by("pk")
    first, last = sorted(r.node.hostname for r in records)
    assert cal.origin == f"acceptance of lease L-2026-0042, 2 nodes ({first} … {last})"
    assert [r.calibration for r in records] == [cal, cal]
    # The large messages' bus bandwidth (nccl-tests prints 54.75 GB/s at 8 GiB) is the measured
    # figure; the accelerator's 400 Gbit/s scale-out caps the fabric the scenario scores.
    assert direct.usable_gbps == pytest.approx(rows[-1].busbw_gbps * 8, rel=0.02)
    scaleout = cluster.accelerator.scaleout_gbps
    assert _fabric(cluster) == pytest.approx(min(direct.usable_gbps, scaleout))

    def latest():
        return calibrations.latest_cluster_calibrations([cluster.pk])[cluster.pk]

    older = SAMPLE.with_name("nccl_all_reduce_perf_legacy.txt").read_text()
    later = {"cluster": cluster, "text": older, "ranks": 2, "actor": None, "now": NOW}
    calibrations.cluster_calibration_record(**later, measured_at=AT_INSTANT - dt.timedelta(days=1))
    assert latest() == cal  # measured earlier: not latest
    newest = calibrations.cluster_calibration_record(
        **later, measured_at=AT_INSTANT + dt.timedelta(hours=1)
    )
    assert latest() == newest
    assert _fabric(cluster) == pytest.approx(min(newest.usable_gbps, scaleout))
    assert newest.usable_gbps != pytest.approx(direct.usable_gbps)


def _import(text: str, **options):
    parsed = acceptance.items_from_nccl(text, lease="L-2026-0042", signed_at=AT_INSTANT, **options)
    return acceptance.acceptance_import(items=parsed.items, signed_by=None, now=NOW)


def test_a_run_too_short_to_fit_is_accepted_without_a_calibration(world):
    # Only the 8 GiB row the acceptance reads: one size, and a fit needs two distinct sizes.
    text = "\n".join(
        line
        for line in SAMPLE.read_text().splitlines()
        if line.startswith("#") or line.split()[:1] == ["8589934592"]
    )
    records = _import(text)
    assert [r.passed for r in records] == [True, True]
    assert not ClusterCalibration.objects.exists()
    assert not AcceptanceRecord.objects.filter(calibration__isnull=False).exists()


def test_a_failed_run_calibrates_nothing(world):
    records = _import(SAMPLE.read_text(), step_time_s=100.0)
    assert not any(r.passed for r in records)
    assert not ClusterCalibration.objects.exists()


def test_a_signerless_import_records_the_calibration_with_its_origin(world):
    (record, _) = _import(SAMPLE.read_text())
    cal = ClusterCalibration.objects.get()
    assert cal.created_by is None
    assert cal.origin.startswith("acceptance of lease L-2026-0042")
    assert record.calibration == cal


def test_one_record_carrying_its_run_calibrates_too(world):
    text = SAMPLE.read_text()
    record = acceptance.acceptance_record(
        line=world["line"],
        node=world["nodes"][0],
        tests=[acceptance.nccl_busbw_test(text)],
        signed_at=AT_INSTANT,
        signed_by=None,
        now=NOW,
        source=acceptance.SOURCE_NCCL,
        raw=text,
    )
    cal = ClusterCalibration.objects.get()
    assert record.calibration == cal
    assert cal.ranks == 16  # the run's device list, not the one node recorded
    assert cal.origin == f"acceptance of lease L-2026-0042, 1 node ({record.node.hostname})"


def test_a_run_across_two_clusters_calibrates_neither(world):
    other = ClusterFactory(accelerator=accelerator("h100"), fabric_gbps_per_gpu=400.0)
    node = Node.objects.create(cluster=other, hostname="node-b01")
    line = LeaseLineFactory(
        lease=world["lease"], cluster=other, node_count=1, monthly_rate=Decimal("100000.00")
    )
    lease = world["lease"]
    Allocation.objects.create(
        line=line, node=node, starts_at=lease.commencement, ends_at=lease.term_end
    )
    records = _import(SAMPLE.read_text(), hostnames=["node-a01", "node-b01"])
    assert [r.passed for r in records] == [True, True]
    assert not ClusterCalibration.objects.exists()


@pytest.mark.parametrize(
    ("size", "time", "message"),
    [
        (10**290, 1.0, r"line 27: size 8000.* B is above 1,125,899,906,842,624 B"),
        (10**20, 1.0, r"B is above"),
        (1, 1e300, r"line 27: time 5\.132e\+301 µs is above 1e\+09 µs"),
    ],
)
def test_a_run_no_network_printed_is_refused_and_writes_nothing(
    world, tmp_path, size, time, message
):
    path = tmp_path / "run.txt"
    path.write_text(scaled_sample(size, time))
    args = (str(path), "--lease", "L-2026-0042", "--signed-by", "ops", "--signed-at", AT)
    with pytest.raises(CommandError, match=r"\[invalid_acceptance\]: nccl-tests output: ") as e:
        _run(*args)
    assert e.match(message)
    assert not AcceptanceRecord.objects.exists()
    assert not ClusterCalibration.objects.exists()
    assert not Allocation.objects.filter(accepted_at__isnull=False).exists()


def test_a_run_whose_times_cannot_be_fitted_is_accepted_without_a_calibration(world):
    # Times of 10^-300 µs: the table reads (its bus bandwidth passes), the fit refuses them.
    records = _import(scaled_sample(time=1e-300))
    assert [r.passed for r in records] == [True, True]
    assert not ClusterCalibration.objects.exists()
