"""The command line: table, JSON, sweep and plot."""

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from clusters.perfmodel import Scenario, ScenarioError, main, parse_spec, sweep
from clusters.perfmodel.sweep import MAX_SWEEP_POINTS, SWEEP_FIELDS

from .scenarios import DEMO, demo, demo_dict

ROOT = Path(__file__).resolve().parents[2]
MIXED = ROOT / "examples" / "scenarios" / "two_sites_mixed.json"


def _run(argv, **kw):
    buf = io.StringIO()
    code = main(argv, stdout=buf, **kw)
    return code, buf.getvalue()


def test_module_prints_a_readable_table():
    proc = subprocess.run(
        [sys.executable, "-m", "clusters.perfmodel", str(DEMO)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Placements" in proc.stdout
    assert "recommendation       keep_leased" in proc.stdout


def test_json_output_parses():
    code, out = _run([str(DEMO), "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "landlord.assessment/1"


def test_sweep_table():
    code, out = _run([str(DEMO), "--sweep", "scarcity_multiplier=0.5:40:8"])
    assert code == 0
    assert out.count("keep_leased") >= 1
    assert "reclaim" in out
    assert "break-even scarcity_multiplier" in out


def test_sweep_plot_svg(tmp_path):
    target = tmp_path / "curve.svg"
    code, _out = _run([str(DEMO), "--sweep", "scarcity_multiplier=0.5:40:8", "--plot", str(target)])
    assert code == 0
    text = target.read_text()
    assert text.lstrip().startswith("<?xml")
    assert "<svg" in text
    assert "break-even" in text


def test_sweep_link_bandwidth_and_rent_with_prebuilt_scenario():
    """The Django command passes an already-built Scenario and no file."""
    for spec in (
        "link_bandwidth_gbps=10:100000:5:log",
        "rent_per_month_usd=1e6:3e9:5",
        "jitter_cv=0:0.1:3",
        "mfu=0.2:0.6:3",
    ):
        code, out = _run(["--sweep", spec], scenario=demo())
        assert code == 0, spec
        assert "Sweep of" in out


def test_sweep_json():
    code, out = _run([str(DEMO), "--sweep", "rent_per_month_usd=1e6:3e9:4", "--json"])
    assert code == 0
    assert len(json.loads(out)["net_usd"]) == 4


def test_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "workload": {"params": 1, "tokens_per_step": 1},
                "pools": [
                    {"site": "a", "accelerator": "H100", "gpus": -1, "fabric_gbps_per_gpu": 1}
                ],
            }
        )
    )
    assert main([str(bad)]) == 2
    assert "$.pools[0].gpus" in capsys.readouterr().err
    assert main([str(DEMO), "--sweep", "nonsense=1:2:3"]) == 2


def test_every_example_scenario_assesses():
    for path in sorted((ROOT / "examples" / "scenarios").glob("*.json")):
        code, out = _run([str(path), "--json"])
        assert code == 0, path
        assert json.loads(out)["recommendation"] in ("reclaim", "keep_leased")


def test_uncertainty_table_json_and_tornado(tmp_path):
    target = tmp_path / "tornado.svg"
    code, out = _run([str(DEMO), "--uncertainty", "500", "--tornado", str(target)])
    assert code == 0
    assert "P(reclaim beats renting)" in out
    assert "flips (only link" in out
    assert "<svg" in target.read_text()
    code, out = _run([str(DEMO), "--json", "--uncertainty", "200"])
    assert code == 0
    doc = json.loads(out)
    assert doc["uncertainty"]["samples"] == 200
    assert _run([str(DEMO), "--tornado", str(target)])[0] == 2
    assert _run([str(DEMO), "--uncertainty", "0"])[0] == 2


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        # Huge count: refused by N, not by a failed allocation.
        (
            "link_bandwidth_gbps=1:10:100000000",
            "--sweep link_bandwidth_gbps N: must be 2 to 10,000, got '100000000'",
        ),
        ("link_bandwidth_gbps=1:10:1", "--sweep link_bandwidth_gbps N: must be 2 to 10,000"),
        ("link_bandwidth_gbps=nan:10:3", "--sweep link_bandwidth_gbps START: must be a decimal"),
        ("link_bandwidth_gbps=1:inf:3", "--sweep link_bandwidth_gbps STOP: must be a decimal"),
        ("link_bandwidth_gbps=1:1e400:3", "--sweep link_bandwidth_gbps STOP: must be finite"),
        ("link_bandwidth_gbps=-5:10:3", "--sweep link_bandwidth_gbps START: must be > 0, got -5.0"),
        ("mfu=0:5:3", "--sweep mfu START: must be > 0, got 0.0"),
        ("mfu=0.5:5:3", "--sweep mfu STOP: must be <= 1, got 5.0"),
        ("jitter_cv=-1:1:3", "--sweep jitter_cv START: must be >= 0, got -1.0"),
        ("horizon_days=-5:1:3", "--sweep horizon_days START: must be >= 0, got -5.0"),
        (
            "scarcity_multiplier=1e308:1.7e308:3",
            "--sweep scarcity_multiplier START: number out of range (|x| > 1e+30)",
        ),
        ("diloco_inner_steps=0.5:10:3", "--sweep diloco_inner_steps START: must be an integer"),
        # Strict parsing: what float()/int() would take but a plain decimal is not.
        ("mfu= 0.5:1:3", "--sweep mfu START: must be a decimal number, got ' 0.5'"),
        ("rent_per_month_usd=1_000:2000:3", "--sweep rent_per_month_usd START: must be a decimal"),
        ("mfu=0.5:1:\u0663", "--sweep mfu N: must be a whole number"),
        ("mfu=0.5:1:+3", "--sweep mfu N: must be a whole number"),
        ("mfu=0.5:1:3:lin", "--sweep mfu: range '0.5:1:3:lin' must be START:STOP:N"),
        ("nonsense=1:2:3", "--sweep: unknown sweep field 'nonsense'"),
    ],
)
def test_sweep_input_out_of_bounds_is_refused(spec, error, capsys):
    code, out = _run([str(MIXED), "--sweep", spec])
    assert code == 2
    assert out == ""
    err = capsys.readouterr().err
    assert err.startswith(f"error: {error}"), err
    assert "Traceback" not in err


def test_sweep_refusal_is_a_clean_exit_from_the_command_line():
    proc = subprocess.run(
        [sys.executable, "-m", "clusters.perfmodel", str(MIXED), "--sweep", "mfu=0:5:3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "error: --sweep mfu START: must be > 0, got 0.0\n"


def test_huge_sweep_count_is_refused_before_any_allocation(capsys, monkeypatch):
    def no_grid(*args, **kwargs):
        raise AssertionError("the grid was built before N was checked")

    # A regression must fail here, not allocate 800 MB.
    monkeypatch.setattr(np, "linspace", no_grid)
    monkeypatch.setattr(np, "geomspace", no_grid)
    tracemalloc.start()
    try:
        code, _out = _run(["--sweep", "link_bandwidth_gbps=1:10:100000000"], scenario=demo())
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 2
    assert "N: must be 2 to 10,000" in capsys.readouterr().err
    # 10**8 float64 values would be 800 MB; the refusal allocates next to nothing.
    assert peak < 5_000_000


def test_sweep_count_bound_is_inclusive():
    field, values = parse_spec(f"mfu=0.1:1:{MAX_SWEEP_POINTS}")
    assert field == "mfu"
    assert values.size == MAX_SWEEP_POINTS == 10_000
    assert values[0] == 0.1
    assert values[-1] == 1.0
    with pytest.raises(ScenarioError) as exc:
        parse_spec(f"mfu=0.1:1:{MAX_SWEEP_POINTS + 1}")
    assert exc.value.path == "--sweep mfu N"


# A value the scenario parser refuses for the field each sweep field stands for.
_OUTSIDE = {
    "scarcity_multiplier": (("economics", "scarcity_multiplier"), -0.5),
    "link_bandwidth_gbps": (("links", 0, "bandwidth_gbps"), 0.0),
    "rent_per_month_usd": (("economics", "rent_per_month_usd"), -1.0),
    "horizon_days": (("economics", "horizon_days"), -1.0),
    "jitter_cv": (("accelerators", "H100", "jitter_cv"), -0.25),
    "mfu": (("accelerators", "H100", "mfu"), 1.5),
    "overlap_s": (("workload", "overlap_s"), -2.0),
    "diloco_inner_steps": (("workload", "diloco_inner_steps"), 0),
}


@pytest.mark.parametrize("field", SWEEP_FIELDS)
def test_sweep_refuses_what_the_scenario_parser_refuses(field):
    where, value = _OUTSIDE[field]
    doc = demo_dict()
    doc.setdefault("economics", {})
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ScenarioError) as parsed:
        Scenario.from_dict(doc)
    with pytest.raises(ScenarioError) as swept:
        parse_spec(f"{field}={value}:{value}:2")
    assert swept.value.path == f"--sweep {field} START"
    assert swept.value.message == parsed.value.message


def test_sweep_api_refuses_values_out_of_bounds():
    s = demo()
    with pytest.raises(ScenarioError) as exc:
        sweep(s, "mfu", [0.5, float("nan"), 0.7])
    assert (exc.value.path, exc.value.message) == ("sweep mfu[1]", "must be finite, got nan")
    with pytest.raises(ScenarioError) as exc:
        sweep(s, "link_bandwidth_gbps", [100.0, -1.0])
    assert exc.value.path == "sweep link_bandwidth_gbps[1]"
    with pytest.raises(ScenarioError) as exc:
        sweep(s, "horizon_days", np.zeros(MAX_SWEEP_POINTS + 1))
    assert "takes 1 to 10,000 values, got 10,001" in str(exc.value)


def test_valid_sweeps_at_the_bounds_still_work():
    code, out = _run([str(MIXED), "--sweep", "mfu=0.25:1:4", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["values"] == [0.25, 0.5, 0.75, 1.0]
    assert all(v is not None and v > 0 for v in doc["effective_pflops"])
    # Throughput grows with MFU.
    assert doc["effective_pflops"] == sorted(doc["effective_pflops"])
    code, out = _run([str(MIXED), "--sweep", "horizon_days=0:90:3", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["rent_usd"][0] == 0.0
    assert doc["recommendation"][0] == "keep_leased"
    # An integer field's log sweep is rounded to whole steps.
    _field, values = parse_spec("diloco_inner_steps=1:1000:5:log")
    assert values.tolist() == [1.0, 6.0, 32.0, 178.0, 1000.0]
