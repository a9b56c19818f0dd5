"""The seam between inventory rows and the performance model, and `manage.py perfmodel`."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clusters import perfmodel
from clusters.demo import seed_inventory
from clusters.models import AcceleratorModel, Cluster, Node
from clusters.services import accelerator_figures, accelerator_key, scenario_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    seed_inventory(scale=0.004)


def test_inventory_becomes_a_valid_scenario_with_running_gpus_only(fleet):
    h100 = Cluster.objects.get(slug="c1-h100")
    down = list(Node.objects.filter(cluster=h100).order_by("pk")[:2])
    Node.objects.filter(pk=down[0].pk).update(status="down")
    Node.objects.filter(pk=down[1].pk).update(status="degraded")  # degraded still trains
    doc = scenario_document()
    scenario = perfmodel.Scenario.from_dict(doc)
    pools = {p["name"]: p for p in doc["pools"]}
    assert pools["c1-h100"]["gpus"] == (h100.nodes.count() - 1) * 8
    assert pools["c1-gb200"]["accelerator"] == "GB200"
    # The inventory's reference MFU (430/989, end to end) becomes the catalog's kernel MFU.
    assert doc["accelerators"]["H100"]["mfu"] == pytest.approx(
        perfmodel.CATALOG["H100"].mfu, abs=2e-3
    )
    assert len(doc["links"]) == 3
    assert len(scenario.pools) == Cluster.objects.count()


def test_every_inventory_generation_maps_to_the_built_in_kernel_mfu():
    """The inventory stores end-to-end MFU; every row, not only the published anchors, becomes
    the kernel MFU the built-in catalog holds (within its 3-decimal rounding), so an inventory
    scenario and a catalog one agree (docs/model.md, "Accelerator catalogs")."""
    rows = list(AcceleratorModel.objects.order_by("slug"))
    assert len(rows) == len(perfmodel.CATALOG)
    for acc in rows:
        key = accelerator_key(acc.slug)
        mfu = accelerator_figures(acc)["mfu"]
        print(f"{key:<6} end to end {acc.reference_mfu:.3f} → kernel {mfu:.4f}")
        assert mfu == pytest.approx(perfmodel.CATALOG[key].mfu, abs=5e-4), key
        assert acc.reference_mfu < mfu <= 1.0
    figures = {accelerator_key(a.slug): accelerator_figures(a)["mfu"] for a in rows}
    # Same peak, higher end-to-end figure (0.45 against 0.435): the H200 is not the slower.
    assert figures["H200"] > figures["H100"]


def test_an_accelerator_outside_the_catalog_converts_by_its_generation():
    ampere_like = AcceleratorModel.objects.get(slug="a100")
    ampere_like.pk, ampere_like.slug, ampere_like.name = None, "a800", "A800"
    ampere_like.save()
    hopper_like = AcceleratorModel.objects.get(slug="h100")
    hopper_like.pk, hopper_like.slug, hopper_like.name = None, "h800", "H800"
    hopper_like.save()
    assert accelerator_figures(ampere_like)["mfu"] == pytest.approx(perfmodel.CATALOG["A100"].mfu)
    assert accelerator_figures(hopper_like)["mfu"] == pytest.approx(
        perfmodel.CATALOG["H100"].mfu, abs=5e-4
    )


def test_leased_gpus_split_a_cluster_into_leased_and_free_pools(fleet):
    h100 = Cluster.objects.get(slug="c1-h100")
    total = h100.nodes.count() * 8
    doc = scenario_document(clusters=[h100], leased_gpus={h100.pk: 16})
    assert [(p["gpus"], p["leased"]) for p in doc["pools"]] == [(16, True), (total - 16, False)]
    assert doc["links"] == [], "one site: no inter-site links"
    everything = scenario_document(clusters=[h100], leased_gpus={h100.pk: 10**9})
    assert [(p["gpus"], p["leased"]) for p in everything["pools"]] == [(total, True)]


def test_scenario_costs_a_constant_number_of_queries(fleet, django_assert_num_queries):
    with django_assert_num_queries(2):
        scenario_document()


def test_command_prints_a_table_and_json(fleet):
    out = io.StringIO()
    call_command("perfmodel", "--site", "campus-2", "--rent-per-month", "1000000", stdout=out)
    assert "Placements" in out.getvalue()
    out = io.StringIO()
    call_command("perfmodel", "--json", "--scarcity", "2", stdout=out)
    assessment = json.loads(out.getvalue())
    # Indented as the model's CLI writes it, not one token per line.
    assert out.getvalue().startswith('{\n  "schema": "landlord.assessment/1",\n')
    assert assessment["schema"] == "landlord.assessment/1"
    assert assessment["recommendation"] in {"reclaim", "keep_leased"}
    assert len(assessment["placements"]) >= 4


def test_command_sweeps_and_plots(fleet, tmp_path):
    out = io.StringIO()
    plot = tmp_path / "curve.svg"
    call_command(
        "perfmodel",
        "--cluster",
        "c1-h100",
        "--rent-per-month",
        "1000000",
        "--sweep",
        "scarcity_multiplier=0.5:4:5",
        "--plot",
        str(plot),
        stdout=out,
    )
    assert plot.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "scarcity_multiplier" in out.getvalue()


def test_command_refuses_unknown_sites(fleet):
    with pytest.raises(CommandError, match="No cluster"):
        call_command("perfmodel", "--site", "nowhere", stdout=io.StringIO())


def test_command_assesses_a_scenario_file(tmp_path):
    out = io.StringIO()
    call_command("perfmodel", "examples/scenarios/two_sites_mixed.json", "--json", stdout=out)
    assert json.loads(out.getvalue())["schema"] == "landlord.assessment/1"
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "landlord.scenario/1", "pools": []}')
    with pytest.raises(CommandError, match=r"bad\.json"):
        call_command("perfmodel", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="no inventory options"):
        call_command("perfmodel", str(bad), "--site", "campus-1", stdout=io.StringIO())


@pytest.mark.parametrize(
    "text",
    [
        '{"workload": {"params": 1' + "0" * 400 + ', "tokens_per_step": 1}, "pools": []}',
        '{"workload": {"params": NaN, "tokens_per_step": 1}, "pools": []}',
        '{"workload": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["huge_int", "nan", "deep"],
)
def test_command_refuses_unbounded_files_with_a_command_error(fleet, tmp_path, text):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(CommandError, match=r"bad\.json: \$"):
        call_command("perfmodel", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="--workload"):
        call_command("perfmodel", "--workload", str(bad), stdout=io.StringIO())


def test_command_decides_with_uncertainty_and_draws_the_tornado(tmp_path):
    target = tmp_path / "t.png"
    out = io.StringIO()
    call_command(
        "perfmodel",
        "examples/scenarios/two_sites_mixed.json",
        "--uncertainty",
        "300",
        "--tornado",
        str(target),
        stdout=out,
    )
    assert "P(reclaim beats renting)" in out.getvalue()
    assert target.read_bytes().startswith(b"\x89PNG")
