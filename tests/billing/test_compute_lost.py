"""The compute lost beside each incident (docs/rules/fleet.md, "Availability and service
credits"): one synchronous job over all the line's GPUs stalls for the incident's downtime plus
one restart, and loses that many GPU-hours × the model's useful fraction for the group;
checked against a computation by hand."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest

from billing import availability as av
from billing import service_credits as sc
from leasing.models import LeaseLine
from tests.factories.clusters import ClusterFactory, accelerator

pytestmark = pytest.mark.django_db


def incident(minutes: int) -> av.IncidentMinutes:
    at = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
    return av.IncidentMinutes(
        incident=1,
        node=1,
        category="gpu",
        opened_at=at,
        resolved_at=at + dt.timedelta(minutes=minutes),
        minutes=Fraction(minutes),
    )


def test_two_h100_nodes_down_two_hours_by_hand():
    h100 = accelerator("h100")
    assert (h100.peak_tflops, h100.reference_mfu, h100.jitter_cv, h100.mtbf_hours) == (
        989,
        0.435,
        0.02,
        50_000,
    )
    cluster = ClusterFactory(accelerator=h100, gpus_per_node=8, fabric_gbps_per_gpu=400.0)
    group = sc.group_model(cluster, nodes=2)
    # The reference job on 16 H100s (the acceptance derivation, tests/fleet/
    # test_acceptance_thresholds.py): compute 0.2015166272 s at the kernel MFU, a step of
    # 0.2491702999 s after stragglers and the exposed all-reduce. Its capacity is 16 GPUs at
    # peak × kernel MFU, so the useful fraction is compute / step × goodput, with goodput
    # M / (M + r): M = 50,000 h · 3,600 / 16 GPUs = 11,250,000 s, r = the 600 s restart.
    #   compute / step = 0.2015166272 / 0.2491702999 = 0.8087505906
    #   goodput = 11,250,000 / 11,250,600 = 0.9999466695
    #   useful fraction = 0.8087505906 · 0.9999466695 = 0.8087074595
    fraction = 0.8087074595
    assert group.gpus == 16
    assert group.restart_cost_s == 600
    assert group.useful_fraction == pytest.approx(fraction, rel=1e-8)
    # One node down 2 h: the whole 16-GPU job stalls 2 h + 600 s = 2.1667 h, 34.67 GPU-hours,
    # of which the useful fraction is lost: 34.6667 · 0.8087074595 = 28.04 useful GPU-hours.
    line = LeaseLine(cluster=cluster, node_count=2)
    lost = sc.model_estimator({cluster.pk: cluster})(line, incident(120))
    assert lost["stalled_hours"] == "2.17"
    assert lost["gpu_hours_stalled"] == "34.67"
    assert lost["gpus"] == 16
    assert lost["restart_cost_s"] == "600"
    assert lost["useful_fraction"] == "0.8087"
    assert lost["useful_gpu_hours_lost"] == "28.04"


def test_the_group_is_evaluated_once_however_many_incidents(monkeypatch, django_assert_num_queries):
    cluster = ClusterFactory(accelerator=accelerator("h100"), gpus_per_node=8)
    estimate = sc.model_estimator({cluster.pk: cluster})
    line = LeaseLine(cluster=cluster, node_count=4)
    calls = []
    original = sc.group_model

    def counting(*args, **kwargs):
        calls.append(kwargs["nodes"])
        return original(*args, **kwargs)

    monkeypatch.setattr(sc, "group_model", counting)  # a spy: the real model still runs
    with django_assert_num_queries(0):
        figures = [estimate(line, incident(m)) for m in (10, 60, 600)]
    assert calls == [4]
    # Longer stalls lose proportionally more: (m/60 + 1/6) h × 32 GPUs × the same fraction.
    stalled = [Decimal(f["gpu_hours_stalled"]) for f in figures]
    assert stalled == [Decimal("10.67"), Decimal("37.33"), Decimal("325.33")]
