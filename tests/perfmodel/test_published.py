"""Kernel MFU apart from end-to-end MFU: the published end-to-end figures come out within 10 %
after the model applies its bubble, stragglers and communication (docs/model.md, "Compute")."""

import numpy as np
import pytest

from clusters.perfmodel import CATALOG
from clusters.perfmodel.published import (
    ANCHOR_OF,
    ANCHOR_OF_GENERATION,
    END_TO_END_MFU,
    ESTIMATED_END_TO_END_MFU,
    FALLBACK_ANCHOR,
    PUBLISHED_RUNS,
    fit_kernel_mfu,
    kernel_mfu,
    kernel_to_end_to_end,
    model_figures,
)

TOLERANCE = 0.10


@pytest.mark.parametrize("index", range(len(PUBLISHED_RUNS)), ids=[r.key for r in PUBLISHED_RUNS])
def test_published_figure_within_10_percent(index):
    run = PUBLISHED_RUNS[index]
    (got,) = model_figures((run,))
    err = got / run.published - 1.0
    print(
        f"{run.key:<22} {run.metric:<15} published {run.published:9.2f}  model {got:9.2f}"
        f"  error {err:+.1%}  ({run.source})"
    )
    assert abs(err) <= TOLERANCE


@pytest.mark.parametrize("accelerator", ["A100", "H100"])
def test_catalog_kernel_mfu_is_the_fit_and_differs_from_end_to_end(accelerator):
    mfu, worst = fit_kernel_mfu(accelerator)
    assert CATALOG[accelerator].mfu == pytest.approx(mfu, abs=1e-3)
    assert worst <= TOLERANCE
    # Kernel MFU is above the end-to-end figure it explains: the model's losses come on top.
    assert CATALOG[accelerator].mfu > END_TO_END_MFU[accelerator][0]


def test_the_published_mfu_used_as_kernel_mfu_misses_as_v1_did():
    """v1 used the end-to-end figure as the kernel input: MegaScale then came out > 10 % low."""
    from clusters.perfmodel.published import _figure

    run = next(r for r in PUBLISHED_RUNS if r.key == "megascale-175b-12k")
    got = float(_figure(run, np.array([0.552]))[0])
    assert got / run.published - 1 < -0.10


def test_inventory_end_to_end_mfu_maps_to_the_kernel_input():
    assert kernel_mfu("H100", 430 / 989) == pytest.approx(CATALOG["H100"].mfu)
    assert kernel_mfu("A100", 0.552) == pytest.approx(CATALOG["A100"].mfu)
    assert kernel_mfu("H100", 0.99) == 1.0


# The catalog's kernel figures are rounded to 3 decimals.
CATALOG_ROUNDING = 5e-4


@pytest.mark.parametrize("accelerator", sorted(CATALOG))
def test_catalog_kernel_mfu_is_the_conversion_of_its_end_to_end_figure(accelerator):
    """Every catalog generation has one end-to-end figure, published or estimated, and its
    kernel MFU is that figure converted: the catalog and the inventory path agree."""
    assert (accelerator in END_TO_END_MFU) != (accelerator in ESTIMATED_END_TO_END_MFU)
    assert ANCHOR_OF[accelerator] in END_TO_END_MFU  # explicit for every catalog accelerator
    e2e = {**END_TO_END_MFU, **ESTIMATED_END_TO_END_MFU}[accelerator][0]
    kernel = kernel_mfu(accelerator, e2e)
    print(
        f"{accelerator:<6} end to end {e2e:.3f} → kernel {kernel:.4f}"
        f" (catalog {CATALOG[accelerator].mfu})"
    )
    assert kernel == pytest.approx(CATALOG[accelerator].mfu, abs=CATALOG_ROUNDING)
    assert e2e < kernel <= 1.0


def ampere_ratio():
    return CATALOG["A100"].mfu / END_TO_END_MFU["A100"][0]


def test_every_generation_is_converted_with_its_anchor_ratio():
    """No generation's end-to-end figure passes through unchanged (the confusion the kernel /
    end-to-end split removes); each takes the ratio of the anchor it is mapped to."""
    hopper = CATALOG["H100"].mfu / END_TO_END_MFU["H100"][0]
    ampere = ampere_ratio()
    assert hopper == pytest.approx(1.134, abs=1e-3)
    assert ampere == pytest.approx(1.199, abs=1e-3)
    for accelerator in ("H100", "H200", "B200", "GB200"):
        assert kernel_to_end_to_end(accelerator) == pytest.approx(hopper)
        assert kernel_mfu(accelerator, 0.4) == pytest.approx(0.4 * hopper)
    for accelerator in ("A100", "V100"):
        assert kernel_to_end_to_end(accelerator) == pytest.approx(ampere)
        assert kernel_mfu(accelerator, 0.35) == pytest.approx(0.35 * ampere)
    assert set(ANCHOR_OF_GENERATION.values()) == set(END_TO_END_MFU)


def test_a_higher_end_to_end_figure_at_equal_peak_gives_a_higher_kernel_mfu():
    """H200 (end to end 0.45) against H100 (0.435), same 989 TFLOP/s: the H200 must not come
    out slower, as it did when only H100's figure was converted (0.45 against 0.493)."""
    assert kernel_mfu("H200", 0.45) > kernel_mfu("H100", 0.435)
    assert kernel_mfu("H200", 0.435) == pytest.approx(kernel_mfu("H100", 0.435))


def test_unknown_accelerator_takes_the_fallback_anchor_and_stays_in_0_1():
    assert FALLBACK_ANCHOR in END_TO_END_MFU
    ratio = kernel_to_end_to_end(FALLBACK_ANCHOR)
    assert kernel_mfu("MI300X", 0.3) == pytest.approx(0.3 * ratio)
    assert kernel_mfu("MI300X", 1.0) == 1.0
    # A name the catalog does not list takes its generation's anchor where one is given.
    assert kernel_mfu("H100-PCIE", 0.3, "ampere") == pytest.approx(0.3 * ampere_ratio())
    assert kernel_mfu("H100-PCIE", 0.3, "hopper") == pytest.approx(0.3 * ratio)
    assert kernel_mfu("V100", 0.3, "hopper") == pytest.approx(0.3 * ampere_ratio())  # name first
    assert kernel_mfu("MI300X", 0.3, "cdna3") == pytest.approx(0.3 * ratio)
    for e2e in np.linspace(0.01, 1.0, 100):
        for accelerator in (*ANCHOR_OF, "MI300X"):
            assert 0.0 < kernel_mfu(accelerator, float(e2e)) <= 1.0


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan")])
def test_end_to_end_mfu_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError):
        kernel_mfu("H100", bad)
