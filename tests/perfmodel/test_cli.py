"""The command line: table, JSON, sweep and plot."""

import io
import json
import subprocess
import sys
from pathlib import Path

from clusters.perfmodel import main

from .scenarios import DEMO, demo

ROOT = Path(__file__).resolve().parents[2]


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
