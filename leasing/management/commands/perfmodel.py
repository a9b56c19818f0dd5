"""`manage.py perfmodel [SCENARIO.json]`: assess a scenario file, or the inventory (all of it,
or some sites or clusters).

Without a file, builds a `landlord.scenario/1` document from the inventory
(`clusters.services`), marking the GPUs currently under lease and their rent. Either way the
model's own CLI prints the table, the JSON (`--json`), a sensitivity sweep
(`--sweep FIELD=START:STOP:N`) and its plot (`--plot`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from clusters import perfmodel
from clusters.models import Cluster
from clusters.perfmodel.scenario import load_json
from clusters.services import scenario_document
from leasing.selectors import leased_gpus_by_cluster


class Command(BaseCommand):
    help = "Assess inventory capacity with the performance model (table, --json, --sweep)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "scenario", nargs="?", help="a scenario JSON file (default: build one from inventory)"
        )
        parser.add_argument("--site", action="append", default=[], help="site slug (repeatable)")
        parser.add_argument(
            "--cluster", action="append", default=[], help="cluster slug (repeatable)"
        )
        parser.add_argument("--workload", help="JSON file with workload fields to override")
        parser.add_argument("--scarcity", type=float, help="scarcity multiplier (default 1)")
        parser.add_argument("--rent-per-month", type=Decimal, help="USD/month (default: leases)")
        parser.add_argument("--horizon-days", type=float, help="window compared, days (default 90)")
        parser.add_argument("--json", action="store_true", help="print the assessment JSON")
        parser.add_argument("--sweep", help="FIELD=START:STOP:N[:log] sensitivity table")
        parser.add_argument("--plot", help="with --sweep: write the curve to FILE.svg or .png")
        parser.add_argument("--scenario-out", help="also write the scenario document to this file")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["scenario"]:
            inventory_options = ("site", "cluster", "workload", "rent_per_month", "scarcity")
            if any(opts[name] for name in inventory_options) or opts["horizon_days"] is not None:
                raise CommandError("A scenario file says everything: no inventory options with it.")
            try:
                data = load_json(Path(str(opts["scenario"])).read_bytes())
                scenario = perfmodel.Scenario.from_dict(data)
            except (OSError, perfmodel.ScenarioError) as exc:
                raise CommandError(f"{opts['scenario']}: {exc}") from exc
            self._run(scenario, opts)
            return
        clusters = Cluster.objects.select_related("site")
        if opts["site"]:
            clusters = clusters.filter(site__slug__in=opts["site"])
        if opts["cluster"]:
            clusters = clusters.filter(slug__in=opts["cluster"])
        chosen = list(clusters)
        if not chosen:
            raise CommandError("No cluster matches the given --site/--cluster.")
        workload = {}
        if opts["workload"]:
            try:
                workload = load_json(Path(str(opts["workload"])).read_bytes())
            except (OSError, perfmodel.ScenarioError) as exc:
                raise CommandError(f"--workload: {exc}") from exc
            if not isinstance(workload, dict):
                raise CommandError("--workload: must be a JSON object of workload fields")
        leased, rent = leased_gpus_by_cluster(chosen, now=timezone.now())
        economics: dict[str, object] = {"rent_per_month_usd": float(rent)}
        if opts["rent_per_month"] is not None:
            economics["rent_per_month_usd"] = float(opts["rent_per_month"])
        if opts["scarcity"] is not None:
            economics["scarcity_multiplier"] = opts["scarcity"]
        if opts["horizon_days"] is not None:
            economics["horizon_days"] = opts["horizon_days"]
        name = (
            ", ".join(sorted({c.site.slug for c in chosen}))
            if not opts["cluster"]
            else ", ".join(c.slug for c in chosen)
        )
        document = scenario_document(
            clusters=chosen, leased_gpus=leased, workload=workload, economics=economics, name=name
        )
        if opts["scenario_out"]:
            Path(str(opts["scenario_out"])).write_text(json.dumps(document, indent=2) + "\n")
        try:
            scenario = perfmodel.Scenario.from_dict(document)
        except perfmodel.ScenarioError as exc:
            raise CommandError(f"invalid scenario: {exc}") from exc
        self._run(scenario, opts)

    def _run(self, scenario: perfmodel.Scenario, opts: dict[str, Any]) -> None:
        """Hand the scenario to the model's CLI with the output options."""
        argv = [flag for flag in ("--json",) if opts["json"]]
        if opts["sweep"]:
            argv += ["--sweep", str(opts["sweep"])]
        if opts["plot"]:
            argv += ["--plot", str(opts["plot"])]
        # The model's CLI writes its own line ends; Django's wrapper would add one per chunk
        # (json.dump writes token by token), breaking the indented layout.
        self.stdout.ending = ""
        status = perfmodel.main(
            argv, scenario=scenario, stdout=self.stdout, prog="manage.py perfmodel"
        )
        if status != 0:
            raise CommandError("the model refused the request (see the message above)")
