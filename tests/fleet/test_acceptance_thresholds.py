"""Acceptance thresholds derive from the performance model (clusters/acceptance.py), checked
against a computation by hand for two clusters of different fabrics."""

import pytest

from clusters import acceptance
from tests.factories.clusters import ClusterFactory, accelerator

pytestmark = pytest.mark.django_db

GiB = 2**30


def test_hopper_on_400g_infiniband_by_hand():
    h100 = accelerator("h100")
    # The inventory catalog's H100 (docs/model.md, "Accelerator catalogs").
    assert (h100.peak_tflops, h100.reference_mfu, h100.jitter_cv, h100.scaleout_gbps) == (
        989,
        0.435,
        0.02,
        400,
    )
    cluster = ClusterFactory(accelerator=h100, gpus_per_node=8, fabric_gbps_per_gpu=400.0)
    th = acceptance.thresholds_for(cluster, nodes=2)

    # Bus bandwidth: n = 2 nodes × 8 GPUs = 16 ranks, S = 8 GiB = 8,589,934,592 bytes,
    # B = min(400, 400) Gbit/s = 400e9 / 8 = 50e9 bytes/s.
    # ring time t = 8.5 µs + 2·15·10 µs + 2·15/16 · S / B
    #            = 0.0000085 + 0.000300 + 1.875 · 0.17179869184 = 0.3224310472 s
    # busbw = 2·15/16 · S / t = 1.875 · 8,589,934,592 / 0.3224310472 = 49.9521603 GB/s
    assert th.gpus == 16
    assert th.message_bytes == 8 * GiB
    assert th.predicted_busbw_gbytes_per_s == pytest.approx(49.9521603, rel=1e-8)
    # threshold = 0.9 × 49.9521603 = 44.9569443 GB/s
    assert th.busbw_threshold == pytest.approx(44.9569443, rel=1e-8)

    # Reference step: 16 replicas (TP = PP = 1), each 16,384 tokens of a 1e9-parameter model.
    # Kernel MFU (docs/model.md, "Compute"): the catalog's 0.493 for H100 is quoted at Llama 3's
    # end-to-end 430/989; the inventory's 0.435 end to end gives 0.493 · 0.435 / (430/989)
    #   = 0.4932465 (no hidden size: no GEMM-width correction)
    # compute = 6 · 1e9 · 16,384 / (989e12 · 0.4932465) = 9.8304e13 / 4.878207885e14
    #         = 0.2015166272 s
    # stragglers: 1 + 0.02 · E[max of 16 standard normals] = 1 + 0.02 · 1.7659913931
    #           = 1.0353198279
    # all-reduce of 2e9 bytes (the ring beats the tree's 0.0800885 s):
    #   8.5 µs + 30 · 10 µs + 1.875 · 2e9 / 50e9 = 0.0753085 s
    # compute with stragglers = 0.2015166272 · 1.0353198279 = 0.2086341598 s; the overlap window
    # is the last micro-batch's backward pass of that slowest replica:
    # overlap = 2/3 · 0.2086341598 / 4 micro-batches = 0.0347723600 s
    # exposed = 0.0753085 − 0.0347723600 = 0.0405361400 s
    # step = 0.2086341598 + 0.0405361400 = 0.2491702999 s
    assert th.predicted_step_s == pytest.approx(0.2491702999, rel=1e-8)
    # threshold = 1.1 × 0.2491702999 = 0.2740873298 s
    assert th.step_threshold == pytest.approx(0.2740873298, rel=1e-8)


def test_volta_on_100g_roce_by_hand():
    v100 = accelerator("v100")
    assert (v100.peak_tflops, v100.reference_mfu, v100.jitter_cv, v100.scaleout_gbps) == (
        125,
        0.35,
        0.03,
        100,
    )
    # A RoCE fabric faster than the GPU's scale-out is capped at it: min(200, 100) = 100.
    cluster = ClusterFactory(accelerator=v100, gpus_per_node=8, fabric_gbps_per_gpu=200.0)
    th = acceptance.thresholds_for(cluster, nodes=4)

    # n = 4 × 8 = 32 ranks, S = 8 GiB, B = 100e9 / 8 = 12.5e9 bytes/s.
    # t = 8.5 µs + 2·31·10 µs + 2·31/32 · 8,589,934,592 / 12.5e9
    #   = 0.0000085 + 0.000620 + 1.9375 · 0.6871947674 = 1.33206836176 s
    # busbw = 1.9375 · 8,589,934,592 / 1.33206836176 = 12.4941022 GB/s
    assert th.predicted_busbw_gbytes_per_s == pytest.approx(12.4941022, rel=1e-8)
    assert th.busbw_threshold == pytest.approx(0.9 * 12.4941022, rel=1e-8)  # 11.2446920

    # V100 has no published end-to-end run: its end-to-end 0.35 takes A100's kernel / end-to-end
    # ratio (docs/model.md, "Compute"), 0.662 / 0.552: 0.35 · 0.662 / 0.552 = 0.4197463768
    # compute = 6 · 1e9 · 16,384 / (125e12 · 0.4197463768) = 9.8304e13 / 5.246829710e13
    #         = 1.8735885369 s
    # stragglers: 1 + 0.03 · E[max of 32 standard normals] = 1 + 0.03 · 2.0696688279
    #           = 1.0620900648
    # all-reduce: 8.5 µs + 62 · 10 µs + 1.9375 · 2e9 / 12.5e9 = 0.3106285 s (tree: 0.3201085 s)
    # overlap = 2/3 · 1.8735885369 · 1.0620900648 / 4 = 0.3316… s ≥ 0.3106285: nothing exposed
    # step = 1.8735885369 · 1.0620900648 = 1.9899197706 s
    assert th.predicted_step_s == pytest.approx(1.9899197706, rel=1e-8)
    assert th.step_threshold == pytest.approx(2.1889117476, rel=1e-8)  # 1.1 × 1.9899197706


def test_the_prediction_follows_the_group_and_the_message_size():
    cluster = ClusterFactory(accelerator=accelerator("h100"), fabric_gbps_per_gpu=400.0)
    # The ring's latency terms grow with the group: a bigger group predicts less busbw.
    small = acceptance.thresholds_for(cluster, nodes=2)
    big = acceptance.thresholds_for(cluster, nodes=64)
    assert big.predicted_busbw_gbytes_per_s < small.predicted_busbw_gbytes_per_s < 50.0
    # A small message is latency-bound: 1 MiB over 16 ranks predicts far below the fabric.
    tiny = acceptance.thresholds_for(cluster, nodes=2, message_bytes=2**20)
    assert tiny.predicted_busbw_gbytes_per_s < 10.0
    # A single GPU all-reduces nothing.
    one = ClusterFactory(accelerator=accelerator("h100"), gpus_per_node=1)
    assert acceptance.thresholds_for(one, nodes=1).predicted_busbw_gbytes_per_s == 0.0
    with pytest.raises(ValueError):
        acceptance.thresholds_for(cluster, nodes=0)


def test_the_accept_rule():
    assert acceptance.passes(">=", 45.0, 44.9569443)
    assert not acceptance.passes(">=", 44.9, 44.9569443)
    assert acceptance.passes("<=", 0.27, 0.2740873298)
    assert not acceptance.passes("<=", 0.28, 0.2740873298)
    with pytest.raises(ValueError):
        acceptance.passes("==", 1.0, 1.0)
