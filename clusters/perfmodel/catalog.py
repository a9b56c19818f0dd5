"""Accelerator descriptions and the default catalog (docs/model.md, "Accelerator catalogs").

Peak dense BF16 TFLOP/s, HBM and scale-out bandwidth are the published figures of that page. MFU,
jitter, MTBF and price are defaults a scenario can override; where a figure is our choice rather
than a published one, the comment says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    """One accelerator model, per GPU.

    peak_tflops: dense BF16 (FP16 for V100) peak, TFLOP/s. mfu: achieved model-FLOPs
    utilization on the workload's kernels, 0–1. hbm_gb: memory, GB. scaleout_gbps: network per
    GPU, Gbit/s (caps the pool's fabric). jitter_cv: coefficient of variation of a worker's step
    time. mtbf_hours: mean time between interruptions attributable to one GPU (and its share of
    host and network), hours. price_per_gpu_hour_usd: market rent, USD per GPU-hour.
    """

    peak_tflops: float
    mfu: float
    hbm_gb: float
    scaleout_gbps: float
    jitter_cv: float
    mtbf_hours: float
    price_per_gpu_hour_usd: float


# Llama 3: 419 unexpected interruptions in 54 days on 16,384 H100s
# ⇒ 16,384 · 54 · 24 / 419 ≈ 50,700 GPU-hours between interruptions per GPU. We use 50,000 h
# for every generation (a choice: no comparable public figure for the others).
_MTBF_HOURS = 50_000.0
# "2 % jitter on 16K GPUs costs about 8.8 %" (docs/model.md); 2 % is our default for every model.
_JITTER_CV = 0.02

CATALOG: dict[str, Accelerator] = {
    # 125 TFLOP/s is FP16 (no BF16). MFU 0.40 is our choice; price ~$1.0/GPU-h.
    "V100": Accelerator(125.0, 0.40, 32.0, 100.0, _JITTER_CV, _MTBF_HOURS, 1.0),
    # MFU 0.552: MegaScale, 175B on 12,288 A100s (arXiv 2402.15627). Price: middle of 0.8–3.0.
    "A100": Accelerator(312.0, 0.552, 80.0, 200.0, _JITTER_CV, _MTBF_HOURS, 1.90),
    # MFU 430/989: Llama 3 405B at 8,192 H100s (Table 4). Price: 1-yr contracts ~$2.35, Mar 2026.
    "H100": Accelerator(989.0, 430.0 / 989.0, 80.0, 400.0, _JITTER_CV, _MTBF_HOURS, 2.35),
    # Same compute as H100; MFU taken equal to H100's (our choice). Price: middle of 2.5–4.5.
    "H200": Accelerator(989.0, 430.0 / 989.0, 141.0, 400.0, _JITTER_CV, _MTBF_HOURS, 3.50),
    # MFU 0.40 is our choice (new parts usually start below Hopper's). Price: middle of 2.3–6.0.
    "B200": Accelerator(2250.0, 0.40, 180.0, 400.0, _JITTER_CV, _MTBF_HOURS, 4.15),
    # Peak: top of the 2,250–2,500 range; scale-out: top of 400–800 Gbit/s. MFU 0.40 our choice.
    "GB200": Accelerator(2500.0, 0.40, 186.0, 800.0, _JITTER_CV, _MTBF_HOURS, 4.50),
}
