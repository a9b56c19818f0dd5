"""The accelerator catalog loaded by migration matches docs/model.md, "Accelerator catalogs"."""

from decimal import Decimal

import pytest

from clusters.models import AcceleratorModel

pytestmark = pytest.mark.django_db

# slug: (peak TFLOP/s, HBM GB, HBM TB/s, scale-out Gbit/s, TDP W) from docs/model.md
EXPECTED = {
    "v100": (125, 32, 0.9, 100, 300),
    "a100": (312, 80, 2.0, 200, 400),
    "h100": (989, 80, 3.35, 400, 700),
    "h200": (989, 141, 4.8, 400, 700),
    "b200": (2250, 180, 8.0, 400, 1000),
    "gb200": (2500, 186, 8.0, 800, 1200),
}


def test_catalog_holds_every_generation_with_published_figures():
    rows = {a.slug: a for a in AcceleratorModel.objects.all()}
    assert set(rows) == set(EXPECTED)
    for slug, (peak, hbm, hbm_bw, out, tdp) in EXPECTED.items():
        a = rows[slug]
        assert (a.peak_tflops, a.hbm_gb, a.hbm_tbps, a.scaleout_gbps, a.tdp_w) == (
            peak,
            hbm,
            hbm_bw,
            out,
            tdp,
        ), slug
    assert {a.generation for a in rows.values()} == {"volta", "ampere", "hopper", "blackwell"}


def test_h100_mfu_is_the_llama3_anchor_and_prices_are_decimal():
    h100 = AcceleratorModel.objects.get(slug="h100")
    assert h100.reference_mfu == pytest.approx(430 / 989, abs=1e-3)
    assert h100.market_price_per_gpu_hour == Decimal("2.3500")
    assert all(
        isinstance(a.market_price_per_gpu_hour, Decimal) for a in AcceleratorModel.objects.all()
    )
