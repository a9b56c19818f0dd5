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

    peak_tflops: dense BF16 (FP16 for V100) peak, TFLOP/s. mfu: KERNEL model-FLOPs utilization
    at the reference GEMM width (terms.kernel_efficiency), 0–1, before the model's bubble,
    stragglers and exposed communication; end-to-end MFU figures are kept apart in
    published.END_TO_END_MFU (published) and published.ESTIMATED_END_TO_END_MFU (ours).
    hbm_gb: memory, GB. scaleout_gbps: network per GPU, Gbit/s (caps the pool's fabric).
    jitter_cv: coefficient of variation of a worker's step time. mtbf_hours: mean time between
    interruptions attributable to one GPU (and its share of host and network), hours.
    price_per_gpu_hour_usd: market rent, USD per GPU-hour.
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
    # 125 TFLOP/s is FP16 (no BF16). Kernel MFU 0.420: our end-to-end estimate 0.35 converted
    # with A100's ratio (published.kernel_mfu). Price ~$1.0/GPU-h.
    "V100": Accelerator(125.0, 0.420, 32.0, 100.0, _JITTER_CV, _MTBF_HOURS, 1.0),
    # Kernel MFU 0.662: fitted (published.fit_kernel_mfu) so that Megatron's 22B–1T iteration
    # times and MegaScale's 55.2 % end-to-end MFU on 12,288 A100s come out within 7.2 % after
    # the model's bubble, stragglers and communication. Price: middle of 0.8–3.0.
    "A100": Accelerator(312.0, 0.662, 80.0, 200.0, _JITTER_CV, _MTBF_HOURS, 1.90),
    # Kernel MFU 0.493: fitted so that Llama 3 405B's 430 (8,192 H100s) and 400 (16,384) TFLOP/s
    # per GPU end to end come out within 0.7 %. Price: 1-yr contracts ~$2.35, Mar 2026.
    "H100": Accelerator(989.0, 0.493, 80.0, 400.0, _JITTER_CV, _MTBF_HOURS, 2.35),
    # Same compute as H100. Kernel MFU 0.510: our end-to-end estimate 0.45 converted with H100's
    # ratio (published.kernel_mfu). Price: 2.5–4.5 middle.
    "H200": Accelerator(989.0, 0.510, 141.0, 400.0, _JITTER_CV, _MTBF_HOURS, 3.50),
    # Kernel MFU 0.454: our end-to-end estimate 0.40 (new parts usually start below Hopper's)
    # converted with H100's ratio (published.kernel_mfu). Price: middle of 2.3–6.0.
    "B200": Accelerator(2250.0, 0.454, 180.0, 400.0, _JITTER_CV, _MTBF_HOURS, 4.15),
    # Peak: top of the 2,250–2,500 range; scale-out: top of 400–800 Gbit/s. Kernel MFU as B200
    # (end to end 0.40, our estimate, converted).
    "GB200": Accelerator(2500.0, 0.454, 186.0, 800.0, _JITTER_CV, _MTBF_HOURS, 4.50),
}
