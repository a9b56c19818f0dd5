"""Scenario parsing and validation: clear errors with the JSON path."""

import pytest

from clusters.perfmodel import CATALOG, Scenario, ScenarioError

from .scenarios import demo_dict, two_site_dict


def _error(d):
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(d)
    return info.value


def test_unknown_field_names_its_path():
    d = two_site_dict()
    d["pools"][1]["gpu_count"] = 8
    err = _error(d)
    assert err.path == "$.pools[1].gpu_count"
    assert "unknown field" in str(err)


def test_negative_gpus_is_rejected_with_path():
    d = two_site_dict()
    d["pools"][2]["gpus"] = -5
    err = _error(d)
    assert err.path == "$.pools[2].gpus"
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("section", "key", "value", "path"),
    [
        ("workload", "params", 0, "$.workload.params"),
        ("workload", "sync", "ring", "$.workload.sync"),
        ("workload", "tensor_parallel", 2.5, "$.workload.tensor_parallel"),
        ("workload", "tokens_per_step", "4M", "$.workload.tokens_per_step"),
        ("economics", "horizon_days", -1, "$.economics.horizon_days"),
        ("economics", "scarcity_multiplier", True, "$.economics.scarcity_multiplier"),
    ],
)
def test_bad_values_name_their_path(section, key, value, path):
    d = two_site_dict()
    d.setdefault(section, {})[key] = value
    assert _error(d).path == path


def test_unknown_accelerator_is_rejected():
    d = two_site_dict()
    d["pools"][0]["accelerator"] = "TPUv9"
    err = _error(d)
    assert err.path == "$.pools[0].accelerator"
    assert "TPUv9" in str(err)


def test_link_to_unknown_site_is_rejected():
    d = two_site_dict()
    d["links"][0]["b"] = "mars"
    err = _error(d)
    assert err.path == "$.links[0].b"
    assert "mars" in str(err)


def test_custom_accelerator_needs_every_field():
    d = two_site_dict()
    d["accelerators"] = {"X1": {"peak_tflops": 100}}
    assert _error(d).path == "$.accelerators.X1.hbm_gb"


def test_catalog_defaults_fill_partial_overrides():
    d = two_site_dict()
    d["accelerators"] = {"H100": {"mfu": 0.5}}
    sc = Scenario.from_dict(d)
    assert sc.accelerators["H100"].mfu == 0.5
    assert sc.accelerators["H100"].peak_tflops == CATALOG["H100"].peak_tflops
    assert sc.workload.step_flops == 6 * 70e9 * 4e6
    assert sc.workload.step_grad_bytes == 70e9 * 2


def test_round_trip_through_dict():
    sc = Scenario.from_dict(demo_dict())
    again = Scenario.from_dict(sc.to_dict())
    assert again == sc
    assert sc.to_dict()["schema"] == "landlord.scenario/1"


def test_wrong_schema_is_rejected():
    d = two_site_dict()
    d["schema"] = "landlord.scenario/9"
    assert _error(d).path == "$.schema"


def test_catalog_covers_the_references_table():
    assert set(CATALOG) == {"V100", "A100", "H100", "H200", "B200", "GB200"}
    assert CATALOG["H100"].peak_tflops == 989
    assert CATALOG["A100"].peak_tflops == 312


def test_every_numeric_field_has_one_bound_the_parser_applies():
    """FIELD_BOUNDS covers every number of the document, and the parser reads it: a value just
    outside an entry's range is refused at that field's path."""
    from dataclasses import fields

    from clusters.perfmodel import Accelerator, Economics, Link, Pool, Workload
    from clusters.perfmodel.scenario import FIELD_BOUNDS

    text = {"sync", "batch_split", "site", "accelerator", "name", "leased", "a", "b"}
    text |= {"reference_accelerator"}
    for section, cls in (
        ("workload", Workload),
        ("accelerator", Accelerator),
        ("pool", Pool),
        ("link", Link),
        ("economics", Economics),
    ):
        numeric = {f.name for f in fields(cls)} - text
        assert numeric <= set(FIELD_BOUNDS[section]), section
    bound = FIELD_BOUNDS["link"]["efficiency"]
    d = demo_dict()
    d["links"][0]["efficiency"] = bound.high + 0.5
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_dict(d)
    assert exc.value.path == "$.links[0].efficiency"
    assert exc.value.message == "must be <= 1, got 1.5"
