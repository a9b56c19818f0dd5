"""Scenario builders shared by the perfmodel tests (plain dicts → Scenario)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clusters.perfmodel import Scenario

DEMO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "demo_metro.json"


def demo_dict() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def demo() -> Scenario:
    return Scenario.from_dict(demo_dict())


def two_site_dict(**workload: Any) -> dict[str, Any]:
    """Two sites of mixed GPUs joined by one link; small enough for property tests."""
    w = {
        "params": 70e9,
        "tokens_per_step": 4e6,
        "tensor_parallel": 8,
        "pipeline_parallel": 4,
        "microbatches": 16,
        "sync": "hierarchical",
    }
    w.update(workload)
    return {
        "schema": "landlord.scenario/1",
        "name": "two sites",
        "workload": w,
        "pools": [
            {"site": "east", "accelerator": "H100", "gpus": 2048, "fabric_gbps_per_gpu": 400},
            {"site": "east", "accelerator": "A100", "gpus": 1024, "fabric_gbps_per_gpu": 200},
            {
                "site": "west",
                "accelerator": "B200",
                "gpus": 1024,
                "fabric_gbps_per_gpu": 400,
                "leased": False,
            },
        ],
        "links": [
            {
                "a": "east",
                "b": "west",
                "bandwidth_gbps": 800,
                "route_km": 40,
                "efficiency": 0.9,
                "latency_us": 20,
                "window_bytes": 16777216,
                "streams": 4,
                "handshake_rtts": 1,
            }
        ],
        "economics": {"rent_per_month_usd": 5e6, "horizon_days": 90},
    }


def llama_dict(gpus: int, microbatches: int, mfu: float, interleave: int) -> dict[str, Any]:
    """Llama 3 405B pre-training (Llama 3 paper, Table 4): TP8, PP16, 16M-token batches of
    8K sequences on H100s with 400 Gbit/s per GPU; micro-batches per replica = batch size/DP."""
    return {
        "workload": {
            "params": 405e9,
            "tokens_per_step": 2048 * 8192,
            "tensor_parallel": 8,
            "pipeline_parallel": 16,
            "microbatches": microbatches,
            "pipeline_interleave": interleave,
        },
        "accelerators": {"H100": {"mfu": mfu}},
        "pools": [{"site": "dc", "accelerator": "H100", "gpus": gpus, "fabric_gbps_per_gpu": 400}],
    }
