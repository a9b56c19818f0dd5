"""`manage.py import_acceptance FILE|-`: record acceptance results from what the tools print.

Two forms (docs/rules/fleet.md, "Importing results"):

* nccl-tests `all_reduce_perf` output for a node group, with `--lease` (and `--hostnames`, else
  the hosts the run lists): the bus bandwidth at the largest message size counts for each node,
  plus `--step-time` if the reference step was measured;
* a `landlord.acceptance/1` JSON document with per-node results.

All or nothing: a malformed file, or any node the rules refuse, refuses the whole file, naming
each failing item. `--dry-run` prints the verdicts and writes nothing.
"""

from __future__ import annotations

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.exceptions import DomainError
from leasing import acceptance

MAX_BYTES = 32 * 2**20


class Command(BaseCommand):
    help = "Import acceptance results (nccl-tests all_reduce_perf output or JSON) and sign them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The results file, or - for standard input.")
        parser.add_argument(
            "--format",
            choices=("auto", "nccl", "json"),
            default="auto",
            dest="fmt",
            help="auto: JSON if the text starts with '{', else nccl-tests output.",
        )
        parser.add_argument("--signed-by", required=True, help="Username of the signing operator.")
        parser.add_argument("--lease", help="Lease number (required for nccl-tests output).")
        parser.add_argument("--line", type=int, help="Line id, when the lease has several.")
        parser.add_argument(
            "--hostnames", help="Comma-separated hosts of the run (default: from its device list)."
        )
        parser.add_argument("--signed-at", help="ISO 8601 instant with offset (default: now).")
        parser.add_argument("--batch", default="", help="Hand-over batch label (a rack, a row).")
        parser.add_argument(
            "--step-time", type=float, help="Measured reference step time, seconds (nccl form)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Print verdicts, write nothing.")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["signed_by"]).first()
        if user is None or not user.is_staff:
            raise CommandError(f"--signed-by: no operator (staff user) {options['signed_by']!r}.")
        text = self._read(options["file"])
        now = timezone.now()
        signed_at = now
        if options["signed_at"]:
            given = parse_datetime(options["signed_at"])
            if given is None or timezone.is_naive(given):
                raise CommandError("--signed-at: an ISO 8601 instant with an offset is required.")
            signed_at = given
        fmt = options["fmt"]
        if fmt == "auto":
            fmt = "json" if text.lstrip().startswith("{") else "nccl"
        try:
            if fmt == "json":
                try:
                    document = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise CommandError(f"Not JSON: {exc}") from exc
                parsed = acceptance.items_from_json(
                    document,
                    lease=options["lease"],
                    signed_at=signed_at if options["signed_at"] else None,
                    batch=options["batch"],
                )
            else:
                if not options["lease"]:
                    raise CommandError("--lease is required for nccl-tests output.")
                hosts = [h.strip() for h in (options["hostnames"] or "").split(",") if h.strip()]
                parsed = acceptance.items_from_nccl(
                    text,
                    lease=options["lease"],
                    line=options["line"],
                    hostnames=hosts,
                    signed_at=signed_at,
                    batch=options["batch"],
                    step_time_s=options["step_time"],
                )
            self.stdout.write(f"Read {parsed.total} nodes ({fmt}); judging against the model.")
            if options["dry_run"]:
                self._preview(acceptance.acceptance_preview(parsed=parsed, now=now))
                return
            records = acceptance.acceptance_import(
                items=parsed.items, refused=parsed.errors, signed_by=user, now=now
            )
        except DomainError as exc:
            raise CommandError(self._refusal(exc)) from exc
        passed = 0
        for record in records:
            passed += record.passed
            verdict = "passed" if record.passed else f"FAILED (incident {record.incident_id})"
            self.stdout.write(f"{record.node.hostname}: {verdict}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(records)} records signed by {user.username}: {passed} passed, "
                f"{len(records) - passed} failed."
            )
        )

    def _read(self, path: str) -> str:
        try:
            if path == "-":
                text = sys.stdin.read(MAX_BYTES + 1)
            else:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read(MAX_BYTES + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if len(text) > MAX_BYTES:
            raise CommandError(f"{path} is larger than {MAX_BYTES} bytes.")
        return text

    def _preview(self, rows: list[acceptance.PreviewRow]) -> None:
        for row in rows:
            if row.passed is None:
                verdict = f"REFUSED [{row.code}] {row.detail}"
            else:
                verdict = "would pass" if row.passed else "would FAIL"
            where = f" ({row.lease_number}, line {row.line})" if row.line else ""
            self.stdout.write(f"{row.hostname}{where}: {verdict}")
        self.stdout.write(f"Dry run: {len(rows)} items, nothing written.")

    @staticmethod
    def _refusal(exc: DomainError) -> str:
        lines = [f"Refused, nothing recorded [{exc.code}]: {exc.message}"]
        for error in exc.extra.get("errors", []):
            lines.append(
                f"  item {error['item']} ({error['hostname']}): [{error['code']}] {error['detail']}"
            )
        return "\n".join(lines)
