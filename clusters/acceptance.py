"""Acceptance thresholds from the performance model (docs/rules/fleet.md, acceptance).

A node is handed over after two measurements on its node group (the nodes of its lease line in
its cluster), each compared with what the performance model predicts for that group:

* **all-reduce bus bandwidth** (nccl-tests `all_reduce_perf`, GB/s = 10⁹ bytes/s): the model's
  ring all-reduce over the group's GPUs (`terms.ring_allreduce_s`: `α₀ + 2(n−1)·α +
  2(n−1)/n · S/B`, B = the cluster's fabric per GPU capped by the accelerator's scale-out),
  turned into the bus bandwidth nccl-tests prints, `busbw = 2(n−1)/n · S / t`, at the message
  size measured (8 GiB, nccl-tests' usual `-e 8G`, unless told). Accepted when
  `measured ≥ 0.9 × predicted`.
* **reference step time** (seconds): one step of the reference workload below, evaluated by the
  model (`model.evaluate`) on a pool of exactly the group's GPUs. Accepted when
  `measured ≤ 1.1 × predicted`.

The reference workload (`REFERENCE_WORKLOAD`) is small and fixed per GPU, so any group of one
node or more runs it: a dense transformer of 10⁹ parameters, data parallel only (TP = PP = 1),
16,384 tokens per GPU per step in 4 micro-batches, bf16 gradients (2 bytes each), hierarchical
sync (one site). Its step is compute × straggler factor + the all-reduce of the 2 GB of
gradients not hidden behind the last micro-batch's backward pass.

The accelerator's figures come from the inventory catalog (`AcceleratorModel`), as in every
inventory scenario (`clusters.services.accelerator_figures`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import Cluster
from .perfmodel import Scenario, evaluate, inputs_of, terms, topology_of
from .services import accelerator_figures, accelerator_key

# The accept rule (docs/rules/fleet.md).
BUSBW_MIN_FRACTION = 0.9
STEP_MAX_FACTOR = 1.1

# nccl-tests' usual largest message (`-e 8G`): where the bus bandwidth has levelled off.
REFERENCE_MESSAGE_BYTES = 8 * 2**30

REFERENCE_TOKENS_PER_GPU = 16_384
REFERENCE_WORKLOAD: dict[str, Any] = {
    "params": 1.0e9,
    "bytes_per_grad": 2,
    "tensor_parallel": 1,
    "pipeline_parallel": 1,
    "microbatches": 4,
    "pipeline_interleave": 1,
    "sync": "hierarchical",
    "batch_split": "equal",
}

# The tests an acceptance record may carry, with their unit and comparison.
TEST_BUSBW = "nccl_all_reduce_busbw"
TEST_STEP = "reference_step_time"
TEST_BURN_IN = "gpu_burn_in"


@dataclass(frozen=True)
class TestSpec:
    name: str
    unit: str
    rule: str  # ">=" or "<="; the measured value must satisfy `measured rule threshold`


TESTS: dict[str, TestSpec] = {
    TEST_BUSBW: TestSpec(TEST_BUSBW, "GB/s", ">="),
    TEST_STEP: TestSpec(TEST_STEP, "s", "<="),
    # A burn-in reports the GPUs that failed it; the threshold is zero.
    TEST_BURN_IN: TestSpec(TEST_BURN_IN, "failed GPUs", "<="),
}


TEST_NAMES = tuple(TESTS)
RULES = ((">=", "at least"), ("<=", "at most"))


@dataclass(frozen=True)
class Thresholds:
    """What the model predicts for a node group, and the thresholds the accept rule makes."""

    cluster_id: int
    nodes: int
    gpus: int
    message_bytes: int
    predicted_busbw_gbytes_per_s: float
    predicted_step_s: float

    @property
    def busbw_threshold(self) -> float:
        return BUSBW_MIN_FRACTION * self.predicted_busbw_gbytes_per_s

    @property
    def step_threshold(self) -> float:
        return STEP_MAX_FACTOR * self.predicted_step_s

    def threshold_of(self, test: str) -> float:
        if test == TEST_BUSBW:
            return self.busbw_threshold
        if test == TEST_STEP:
            return self.step_threshold
        return 0.0


def fabric_gbps_per_gpu(cluster: Cluster) -> float:
    """The bus bandwidth per GPU the model uses, Gbit/s: the cluster's fabric, capped by the
    accelerator's scale-out (docs/model.md, "Collectives")."""
    return min(cluster.fabric_gbps_per_gpu, cluster.accelerator.scaleout_gbps)


def predicted_busbw(cluster: Cluster, *, nodes: int, message_bytes: int) -> float:
    """Bus bandwidth (GB/s) nccl-tests should print for a ring all-reduce of `message_bytes`
    per rank over the GPUs of `nodes` nodes of `cluster`, by the model's ring term."""
    ranks = nodes * cluster.gpus_per_node
    bandwidth = terms.gbps_to_bytes_per_s(fabric_gbps_per_gpu(cluster))
    seconds = float(terms.ring_allreduce_s(message_bytes, ranks, bandwidth))
    if ranks <= 1 or seconds <= 0:
        # One GPU all-reduces nothing; nccl-tests prints busbw 0 (factor 2(n−1)/n = 0).
        return 0.0
    return 2 * (ranks - 1) / ranks * message_bytes / seconds / 1e9


def reference_scenario(cluster: Cluster, *, nodes: int) -> Scenario:
    """The reference workload on a pool of exactly the group's GPUs (one site, no links)."""
    gpus = nodes * cluster.gpus_per_node
    key = accelerator_key(cluster.accelerator.slug)
    return Scenario.from_dict(
        {
            "name": f"acceptance {cluster.slug} × {nodes}",
            "workload": {**REFERENCE_WORKLOAD, "tokens_per_step": REFERENCE_TOKENS_PER_GPU * gpus},
            "accelerators": {key: accelerator_figures(cluster.accelerator)},
            "pools": [
                {
                    "site": "acceptance",
                    "accelerator": key,
                    "gpus": gpus,
                    "fabric_gbps_per_gpu": fabric_gbps_per_gpu(cluster),
                }
            ],
            "economics": {"reference_accelerator": key},
        }
    )


def predicted_step_s(cluster: Cluster, *, nodes: int) -> float:
    """The model's step time (s) of the reference workload on `nodes` nodes of `cluster`."""
    scenario = reference_scenario(cluster, nodes=nodes)
    out = evaluate(topology_of(scenario), inputs_of(scenario))
    return float(out.step_time_s)


def thresholds_for(
    cluster: Cluster, *, nodes: int, message_bytes: int = REFERENCE_MESSAGE_BYTES
) -> Thresholds:
    """Predictions and accept thresholds for a group of `nodes` nodes of `cluster`."""
    if nodes < 1:
        raise ValueError("a node group has at least one node")
    return Thresholds(
        cluster_id=cluster.pk,
        nodes=nodes,
        gpus=nodes * cluster.gpus_per_node,
        message_bytes=message_bytes,
        predicted_busbw_gbytes_per_s=predicted_busbw(
            cluster, nodes=nodes, message_bytes=message_bytes
        ),
        predicted_step_s=predicted_step_s(cluster, nodes=nodes),
    )


def passes(rule: str, measured: float, threshold: float) -> bool:
    """`measured rule threshold` (`>=` or `<=`)."""
    if rule == ">=":
        return measured >= threshold
    if rule == "<=":
        return measured <= threshold
    raise ValueError(f"unknown rule {rule!r}")
