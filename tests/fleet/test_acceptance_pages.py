"""Operator side of acceptance: the hand-over page, the read-only admin, the two-step upload."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from clusters.models import ClusterCalibration, Incident, Node
from leasing import acceptance
from leasing.models import AcceptanceRecord, Allocation
from tests.factories.clusters import ClusterFactory, accelerator
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, TenantFactory, UserFactory
from tests.factories.nccl import scaled_sample

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent.parent / "perfmodel" / "data" / "nccl_all_reduce_perf_2x8_h100.txt"


@pytest.fixture
def world():
    cluster = ClusterFactory(accelerator=accelerator("h100"), fabric_gbps_per_gpu=400.0)
    nodes = [
        Node.objects.create(cluster=cluster, hostname=h)
        for h in ("node-a01", "node-a02", "node-a03")
    ]
    today = timezone.now().date()
    lease = LeaseFactory(
        number="L-2026-0077",
        tenant=TenantFactory(name="Frontier Lab"),
        commencement_date=today - dt.timedelta(days=5),
    )
    line = LeaseLineFactory(
        lease=lease, cluster=cluster, node_count=3, monthly_rate=Decimal("300000.00")
    )
    for n in nodes:
        Allocation.objects.create(
            line=line, node=n, starts_at=lease.commencement, ends_at=lease.term_end
        )
    return {"lease": lease, "line": line, "nodes": nodes}


def staff(username, *groups):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def test_the_handover_page_shows_progress_per_line(client, world):
    a, b, _ = world["nodes"]
    at = timezone.now() - dt.timedelta(hours=3)
    acceptance.acceptance_record(
        line=world["line"],
        node=a,
        tests=[{"name": "gpu_burn_in", "measured": 0}],
        signed_at=at,
        signed_by=None,
        batch="rack-1",
    )
    acceptance.acceptance_record(
        line=world["line"],
        node=b,
        tests=[{"name": "gpu_burn_in", "measured": 2}],
        signed_at=at,
        signed_by=None,
        batch="rack-1",
    )
    client.force_login(staff("v", "viewer"))
    response = client.get(reverse("operator:fleet-handover"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "L-2026-0077" in html
    assert "Frontier Lab" in html
    assert "rack-1: 1 accepted, 1 failed" in html
    (row,) = response.context["rows"]
    assert (row.accepted, row.failed, row.pending) == (1, 1, 1)
    assert "UTC" in html
    filtered = client.get(reverse("operator:fleet-handover"), {"lease": "L-1999"})
    assert filtered.context["rows"] == []


def test_records_are_read_only_in_the_admin(client, world):
    a = world["nodes"][0]
    record = acceptance.acceptance_record(
        line=world["line"],
        node=a,
        tests=[{"name": "gpu_burn_in", "measured": 0}],
        signed_at=timezone.now() - dt.timedelta(hours=1),
        signed_by=None,
        batch="rack-1",
    )
    client.force_login(staff("c", "capacity"))
    changelist = reverse("admin:leasing_acceptancerecord_changelist")
    for query in (
        {},
        {"passed__exact": "1"},
        {"batch": "rack-1"},
        {"q": "node-a01"},
        {"q": "L-2026-0077"},
    ):
        response = client.get(changelist, query)
        assert response.status_code == 200, query
        assert "node-a01" in response.content.decode(), query
    change = client.get(reverse("admin:leasing_acceptancerecord_change", args=[record.pk]))
    assert change.status_code == 200
    assert "gpu_burn_in" in change.content.decode()
    assert client.get(reverse("admin:leasing_acceptancerecord_add")).status_code == 403
    post = client.post(
        reverse("admin:leasing_acceptancerecord_change", args=[record.pk]), {"batch": "x"}
    )
    assert post.status_code == 403
    record.refresh_from_db()
    assert record.batch == "rack-1"


def test_upload_previews_then_records_on_confirm(client, world):
    user = staff("cap", "capacity")
    client.force_login(user)
    url = reverse("admin:leasing_acceptancerecord_upload")
    assert client.get(url).status_code == 200
    signed_at = (timezone.now() - dt.timedelta(hours=1)).replace(microsecond=0)
    fields = {
        "fmt": "nccl",
        "lease": "L-2026-0077",
        "signed_at": signed_at.isoformat(),
        "batch": "rack-1",
        "preview": "1",
    }
    step1 = client.post(
        url, {**fields, "results": SimpleUploadedFile("r.txt", SAMPLE.read_bytes())}
    )
    assert step1.status_code == 200
    preview = step1.context["preview"]
    assert [(r.hostname, r.passed) for r in preview] == [("node-a01", True), ("node-a02", True)]
    assert 'data-testid="confirm"' in step1.content.decode()
    assert not AcceptanceRecord.objects.exists()
    assert not Incident.objects.exists()
    assert not ClusterCalibration.objects.exists()

    step2 = client.post(url, {**fields, "text": step1.context["text"], "confirm": "1"})
    assert step2.status_code == 302
    records = AcceptanceRecord.objects.order_by("node__hostname")
    assert [r.node.hostname for r in records] == ["node-a01", "node-a02"]
    assert {r.signed_by for r in records} == {user}
    assert {r.signed_at for r in records} == {signed_at}
    # The run also calibrated its cluster, signed by the same operator, and the page says so.
    cal = ClusterCalibration.objects.get()
    assert (cal.created_by, cal.measured_at) == (user, signed_at)
    assert {r.calibration for r in records} == {cal}
    said = [str(m) for m in get_messages(step2.wsgi_request)]
    assert f"Calibrated {cal.cluster}: bus bandwidth {cal.usable_gbps:,.1f} Gbit/s" in said[1]


def test_upload_refuses_a_file_with_a_node_off_the_lease_and_offers_no_confirm(client, world):
    client.force_login(staff("cap", "capacity"))
    url = reverse("admin:leasing_acceptancerecord_upload")
    text = SAMPLE.read_text()
    response = client.post(
        url,
        {
            "fmt": "nccl",
            "lease": "L-2026-0077",
            "hostnames": "node-a01,ghost",
            "text": text,
            "preview": "1",
        },
    )
    assert response.status_code == 200
    rows = response.context["preview"]
    assert [(r.hostname, r.code) for r in rows] == [("node-a01", ""), ("ghost", "unknown_node")]
    assert 'data-testid="confirm"' not in response.content.decode()
    # Confirming anyway is refused whole.
    response = client.post(
        url,
        {
            "fmt": "nccl",
            "lease": "L-2026-0077",
            "hostnames": "node-a01,ghost",
            "text": text,
            "confirm": "1",
        },
    )
    assert response.status_code == 200
    assert "unknown_node" in response.content.decode()
    assert not AcceptanceRecord.objects.exists()
    # A naive instant is refused by the form.
    response = client.post(
        url,
        {
            "fmt": "nccl",
            "lease": "L-2026-0077",
            "text": text,
            "signed_at": "2026-11-05T09:00",
            "preview": "1",
        },
    )
    assert "offset" in response.content.decode()


def test_viewers_cannot_upload(client, world):
    client.force_login(staff("v", "viewer"))
    url = reverse("admin:leasing_acceptancerecord_upload")
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"fmt": "nccl", "lease": "L-2026-0077", "text": SAMPLE.read_text(), "confirm": "1"}
    )
    assert response.status_code == 403
    assert not AcceptanceRecord.objects.exists()


def test_upload_of_a_run_no_network_printed_is_refused_and_writes_nothing(client, world):
    # Times of ~10^300 µs: once a server error (LinAlgError) from the calibration's fit on confirm.
    client.force_login(staff("cap", "capacity"))
    response = client.post(
        reverse("admin:leasing_acceptancerecord_upload"),
        {"fmt": "nccl", "lease": "L-2026-0077", "text": scaled_sample(time=1e300), "confirm": "1"},
    )
    assert response.status_code == 200  # the form again, with the refusal
    page = response.content.decode()
    assert "[invalid_acceptance]" in page
    assert "µs is above 1e+09 µs" in page
    assert not AcceptanceRecord.objects.exists()
    assert not ClusterCalibration.objects.exists()
