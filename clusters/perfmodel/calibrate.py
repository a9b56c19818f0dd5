"""Calibrate an accelerator's MFU input from a measured end-to-end throughput.

Published MFU figures (Llama 3: 430 TFLOP/s per H100 at 8,192 GPUs) are end-to-end: they
already include the pipeline bubble, stragglers and exposed communication at that scale. The
model's ``mfu`` input is the kernel-level share those losses are applied to. This solves for the
``mfu`` at which the model reproduces the measured figure on the measured configuration, so the
model can then predict other scales from its own terms.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .model import evaluate, inputs_of, topology_of
from .scenario import Scenario


def calibrate_mfu(scenario: Scenario, accelerator: str, target_tflops_per_gpu: float) -> float:
    """The MFU (0–1] of ``accelerator`` at which the scenario achieves the target TFLOP/s/GPU.

    Achieved throughput = 6·params·tokens / step time / GPUs in use (before goodput). It rises
    monotonically with MFU, so a vectorized bracket search (three 256-point grids) finds it to
    ~1e-7 relative. Raises ValueError if the target is out of reach even at MFU = 1.
    """
    if accelerator not in scenario.accelerators:
        raise ValueError(f"accelerator {accelerator!r} not in the scenario")
    base = replace(
        scenario,
        accelerators={
            **scenario.accelerators,
            accelerator: replace(scenario.accelerators[accelerator], mfu=1.0),
        },
    )
    topo = topology_of(base)
    x = inputs_of(base)
    which = np.array([p.accelerator == accelerator for p in base.pools])
    lo, hi = 1e-6, 1.0
    for _ in range(3):
        grid = np.linspace(lo, hi, 256)
        mfu = np.where(which[None, :], grid[:, None], x.mfu[None, :])
        achieved = evaluate(topo, x.replace(mfu=mfu)).achieved_tflops_per_gpu
        if achieved[-1] < target_tflops_per_gpu:
            raise ValueError(
                f"{target_tflops_per_gpu} TFLOP/s per GPU is out of reach (max {achieved[-1]:.1f})"
            )
        i = int(np.argmax(achieved >= target_tflops_per_gpu))
        if i == 0:
            return float(grid[0])
        lo, hi = float(grid[i - 1]), float(grid[i])
    return hi
