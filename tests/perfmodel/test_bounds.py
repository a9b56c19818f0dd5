"""Input bounds: huge numbers, NaN/inf, deep or large documents are refused with a clear
ScenarioError (CLI exit 2 and a message), never a traceback."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from clusters.perfmodel import Scenario, ScenarioError, main
from clusters.perfmodel.scenario import MAX_DEPTH, check_bounds, load_json

from .scenarios import two_site_dict

ROOT = Path(__file__).resolve().parents[2]


def _nested(depth):
    return "[" * depth + "]" * depth


def _with_gpus(value):
    d = two_site_dict()
    d["pools"][1]["gpus"] = value
    return json.dumps(d)


BAD_TEXTS = {
    "huge_int": lambda: _with_gpus(10**400),
    "huge_int_5000_digits": lambda: '{"workload": {"params": 1' + "0" * 5000 + "}}",
    "nan": lambda: '{"workload": {"params": NaN, "tokens_per_step": 1}, "pools": []}',
    "infinity": lambda: '{"workload": {"params": Infinity, "tokens_per_step": 1}, "pools": []}',
    "deep_100k": lambda: '{"workload": ' + _nested(100_000) + "}",
    "deep_17": lambda: '{"workload": {"params": ' + _nested(MAX_DEPTH + 1) + "}}",
    "wide": lambda: '{"pools": [' + ",".join(["0"] * 200_000) + "]}",
    "float_overflow": lambda: '{"workload": {"params": 1e999, "tokens_per_step": 1}}',
    "not_utf8": lambda: b'{"name": "\xff"}',
}


def test_huge_int_case_holds_a_401_digit_integer():
    assert "1" + "0" * 400 in BAD_TEXTS["huge_int"]()


@pytest.mark.parametrize("case", sorted(BAD_TEXTS))
def test_load_json_refuses_with_a_scenario_error(case):
    text = BAD_TEXTS[case]()
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(load_json(text))
    assert info.value.path.startswith("$")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**31), float("nan"), float("inf"), 1e31],
)
def test_from_dict_refuses_out_of_range_numbers_with_the_path(value):
    d = two_site_dict()
    d["pools"][1]["gpus"] = value
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(d)
    assert info.value.path == "$.pools[1].gpus"


def test_from_dict_refuses_deep_python_structures_without_recursion():
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    d = two_site_dict()
    d["workload"]["params"] = deep
    with pytest.raises(ScenarioError, match="nested too deeply"):
        Scenario.from_dict(d)


def test_a_long_list_in_a_number_field_gives_a_short_message():
    d = two_site_dict()
    d["workload"]["params"] = list(range(50_000))
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(d)
    assert info.value.path == "$.workload.params"
    assert len(str(info.value)) < 200


def test_check_bounds_accepts_ordinary_documents():
    check_bounds(two_site_dict())
    Scenario.from_dict(load_json(json.dumps(two_site_dict())))


@pytest.mark.parametrize("case", ["huge_int", "nan", "deep_100k", "not_utf8"])
def test_cli_exits_2_with_a_message(tmp_path, case):
    text = BAD_TEXTS[case]()
    path = tmp_path / "bad.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "clusters.perfmodel", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: $")
    assert "Traceback" not in proc.stderr


def test_cli_main_in_process(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(BAD_TEXTS["deep_100k"]())
    assert main([str(path)], stdout=io.StringIO()) == 2
