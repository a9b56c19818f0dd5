"""Published end-to-end training figures and the kernel MFU that reproduces them.

docs/model.md, "Compute" and "Sources". Published MFU figures are END-TO-END: they already
include the pipeline bubble, stragglers and exposed communication of their run. The catalog's
``mfu`` is the KERNEL MFU those losses are applied to (at the reference GEMM width, see
``terms.kernel_efficiency``). :func:`fit_kernel_mfu` finds, per accelerator, the one kernel MFU
that brings every published run of that accelerator closest (minimax relative error) after the
model applies its own losses; the catalog holds the result, and tests check every run within
10 %. :func:`kernel_mfu` converts any generation's end-to-end figure (the inventory's, or our
estimate for a generation with no published run) into the kernel input with the kernel /
end-to-end ratio of a published anchor (:data:`ANCHOR_OF`).

Each run is a scenario document with the configuration the source states, and the figure it
published: ``tflops_per_gpu`` (model FLOPs per GPU per second, compared with the model's
``achieved_tflops_per_gpu``) or ``iteration_s`` (compared with ``step_time_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .catalog import CATALOG
from .model import evaluate, inputs_of, topology_of
from .scenario import Scenario

Metric = Literal["tflops_per_gpu", "iteration_s"]

# End-to-end MFU as published (kept apart from the catalog's kernel MFU).
END_TO_END_MFU: dict[str, tuple[float, str]] = {
    "H100": (430.0 / 989.0, "Llama 3 405B, 8,192 H100s: 430 TFLOP/s per GPU (Table 4)"),
    "A100": (0.552, "MegaScale, 175B on 12,288 A100s: 55.2 % MFU (arXiv 2402.15627)"),
}

# End-to-end MFU of the generations with no published run of their own: our estimates, the same
# as the inventory's (migration clusters/0002). The catalog's kernel MFU of each is its
# conversion by :func:`kernel_mfu`, rounded to 3 decimals (tests/perfmodel/test_published.py).
ESTIMATED_END_TO_END_MFU: dict[str, tuple[float, str]] = {
    "V100": (0.35, "our estimate: below A100's 0.552 (older kernels, 100 Gbit/s fabric)"),
    "H200": (0.45, "our estimate: H100's compute, more and faster HBM (141 GB, 4.8 TB/s)"),
    "B200": (0.40, "our estimate: new parts usually start below Hopper's 0.435"),
    "GB200": (0.40, "our estimate: as B200"),
}

# Which published anchor converts each generation's end-to-end MFU into the kernel input
# (docs/model.md, "Compute"). The ratio kernel / end to end is what the model's own losses
# (bubble, stragglers, exposed communication) took away on the anchor's runs, so a generation
# borrows the ratio of the anchor whose runs it resembles: Hopper and Blackwell train at
# thousands of GPUs on 400–800 Gbit/s per GPU with Llama 3's kind of parallelism (H100);
# Volta on a slower fabric with Megatron's (A100). Keyed by the inventory's generations.
ANCHOR_OF_GENERATION: dict[str, str] = {
    "volta": "A100",
    "ampere": "A100",
    "hopper": "H100",
    "blackwell": "H100",
}
# The same, per catalog accelerator.
ANCHOR_OF: dict[str, str] = {
    "V100": ANCHOR_OF_GENERATION["volta"],
    "A100": ANCHOR_OF_GENERATION["ampere"],
    "H100": ANCHOR_OF_GENERATION["hopper"],
    "H200": ANCHOR_OF_GENERATION["hopper"],
    "B200": ANCHOR_OF_GENERATION["blackwell"],
    "GB200": ANCHOR_OF_GENERATION["blackwell"],
}
# An accelerator whose name and generation are both unknown takes the H100 ratio: the newest
# anchor, and the smaller of the two corrections (1.134 against A100's 1.199).
FALLBACK_ANCHOR = "H100"


def anchor_of(accelerator: str, generation: str | None = None) -> str:
    """The published anchor whose ratio converts ``accelerator``'s end-to-end MFU: by name
    (:data:`ANCHOR_OF`), else by generation (:data:`ANCHOR_OF_GENERATION`), else
    :data:`FALLBACK_ANCHOR`."""
    if accelerator in ANCHOR_OF:
        return ANCHOR_OF[accelerator]
    return ANCHOR_OF_GENERATION.get((generation or "").lower(), FALLBACK_ANCHOR)


def kernel_to_end_to_end(accelerator: str, generation: str | None = None) -> float:
    """Kernel MFU / end-to-end MFU on the accelerator's anchor runs (H100 1.134, A100 1.199):
    the catalog's fitted kernel MFU over the anchor's published end-to-end figure."""
    anchor = anchor_of(accelerator, generation)
    return CATALOG[anchor].mfu / END_TO_END_MFU[anchor][0]


def kernel_mfu(accelerator: str, end_to_end_mfu: float, generation: str | None = None) -> float:
    """The kernel MFU input for an accelerator whose END-TO-END MFU is given (e.g. the
    inventory's ``reference_mfu``): the figure times its anchor's kernel / end-to-end ratio
    (:func:`anchor_of`: by name, else by ``generation``, else :data:`FALLBACK_ANCHOR`), capped
    at 1. Every generation is converted: an end-to-end figure is never used as kernel MFU.
    Raises ``ValueError`` unless the figure is in (0, 1]."""
    if not 0.0 < end_to_end_mfu <= 1.0:
        raise ValueError(f"end-to-end MFU must be in (0, 1], got {end_to_end_mfu!r}")
    return min(1.0, end_to_end_mfu * kernel_to_end_to_end(accelerator, generation))


@dataclass(frozen=True)
class PublishedRun:
    """One published training run: its configuration as a scenario and its figure."""

    key: str
    accelerator: str
    metric: Metric
    published: float
    source: str
    scenario: dict[str, Any]


def _megatron_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Hardware FLOPs of one iteration with full activation recomputation (Korthikanti et al.,
    arXiv 2205.05198, section 6: ``96·B·s·l·h²·(1 + s/6h + V/16lh)``)."""
    b, s, l_, h, v = float(batch), float(seq), float(layers), float(hidden), float(vocab)
    return 96.0 * b * s * l_ * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l_ * h))


def _model_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Model FLOPs of one iteration, no recomputation (Narayanan et al., arXiv 2104.04473:
    ``72·B·s·l·h²·(1 + s/6h + V/12lh)``)."""
    b, s, l_, h, v = float(batch), float(seq), float(layers), float(hidden), float(vocab)
    return 72.0 * b * s * l_ * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l_ * h))


def _one_pool(
    accelerator: str, gpus: int, fabric: float, workload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "workload": workload,
        "pools": [
            {"site": "dc", "accelerator": accelerator, "gpus": gpus, "fabric_gbps_per_gpu": fabric}
        ],
    }


def _llama(gpus: int, microbatches: int) -> dict[str, Any]:
    # TP 8, PP 16, 16M-token batches of 8K sequences; interleave depth not published (8 assumed).
    return _one_pool(
        "H100",
        gpus,
        400.0,
        {
            "params": 405e9,
            "tokens_per_step": 2048 * 8192,
            "tensor_parallel": 8,
            "pipeline_parallel": 16,
            "microbatches": microbatches,
            "pipeline_interleave": 8,
            "hidden_size": 16384,
        },
    )


def _megatron(
    layers: int, hidden: int, tp: int, pp: int, gpus: int, batch: int, params: float
) -> dict[str, Any]:
    # Selene A100-80GB, sequence 2,048, vocabulary 51,200, micro-batch 1 (so m = global batch),
    # data parallelism 1, no interleaving.
    return _one_pool(
        "A100",
        gpus,
        200.0,
        {
            "params": params,
            "tokens_per_step": batch * 2048,
            "flops_per_step": _megatron_flops(batch, 2048, layers, hidden, 51200),
            "tensor_parallel": tp,
            "pipeline_parallel": pp,
            "microbatches": batch,
            "hidden_size": hidden,
        },
    )


_MEGATRON = (
    "Korthikanti et al., arXiv 2205.05198, Table 5 (full recompute); configurations of its Table 3"
)

PUBLISHED_RUNS: tuple[PublishedRun, ...] = (
    PublishedRun(
        "llama3-405b-8k",
        "H100",
        "tflops_per_gpu",
        430.0,
        "Llama 3 paper, Table 4: 8,192 H100s, DP 64, 430 TFLOP/s per GPU",
        _llama(8192, 32),
    ),
    PublishedRun(
        "llama3-405b-16k",
        "H100",
        "tflops_per_gpu",
        400.0,
        "Llama 3 paper, Table 4: 16,384 H100s, DP 128, 400 TFLOP/s per GPU",
        _llama(16384, 16),
    ),
    PublishedRun(
        "megatron-22b",
        "A100",
        "iteration_s",
        1.42,
        _MEGATRON,
        _megatron(48, 6144, 8, 1, 8, 4, 22e9),
    ),
    PublishedRun(
        "megatron-175b",
        "A100",
        "iteration_s",
        18.13,
        _MEGATRON,
        _megatron(96, 12288, 8, 8, 64, 64, 175e9),
    ),
    PublishedRun(
        "megatron-530b",
        "A100",
        "iteration_s",
        49.05,
        _MEGATRON,
        _megatron(105, 20480, 8, 35, 280, 280, 530e9),
    ),
    PublishedRun(
        "megatron-1t",
        "A100",
        "iteration_s",
        94.42,
        _MEGATRON,
        _megatron(128, 25600, 8, 64, 512, 512, 1e12),
    ),
    PublishedRun(
        "megascale-175b-12k",
        "A100",
        "tflops_per_gpu",
        0.552 * 312.0,
        "MegaScale (arXiv 2402.15627): 175B, 12,288 A100s, 55.2 % MFU; TP 8, PP 8, batch "
        "6,144 × 2,048 tokens (DP 192, 32 micro-batches); interleave depth not published (4 "
        "assumed)",
        _one_pool(
            "A100",
            12288,
            200.0,
            {
                "params": 175e9,
                "tokens_per_step": 6144 * 2048,
                "flops_per_step": _model_flops(6144, 2048, 96, 12288, 51200),
                "tensor_parallel": 8,
                "pipeline_parallel": 8,
                "microbatches": 32,
                "pipeline_interleave": 4,
                "hidden_size": 12288,
            },
        ),
    ),
)


def _figure(run: PublishedRun, mfu: np.ndarray | None) -> np.ndarray:
    """The model's value of the run's figure, for each kernel MFU in ``mfu`` (one batch)."""
    sc = Scenario.from_dict(run.scenario)
    x = inputs_of(sc)
    if mfu is not None:
        x = x.replace(mfu=np.asarray(mfu, dtype=np.float64)[:, None])
    o = evaluate(topology_of(sc), x)
    value = o.achieved_tflops_per_gpu if run.metric == "tflops_per_gpu" else o.step_time_s
    return np.atleast_1d(np.asarray(value, dtype=np.float64))


def model_figures(runs: tuple[PublishedRun, ...] = PUBLISHED_RUNS) -> list[float]:
    """The model's value of each run's published figure with the catalog's kernel MFU."""
    return [float(_figure(run, None)[0]) for run in runs]


def fit_kernel_mfu(accelerator: str) -> tuple[float, float]:
    """The kernel MFU (0–1] minimizing the largest relative error over the accelerator's runs,
    and that error: one vectorized batch per run over a 0.001-step grid."""
    runs = tuple(r for r in PUBLISHED_RUNS if r.accelerator == accelerator)
    grid = np.round(np.linspace(0.2, 1.0, 801), 3)
    errors = np.max([np.abs(_figure(run, grid) / run.published - 1.0) for run in runs], axis=0)
    i = int(np.argmin(errors))
    return float(grid[i]), float(errors[i])
