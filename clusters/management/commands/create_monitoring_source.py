"""`manage.py create_monitoring_source NAME`: print a new monitoring source's ingestion key
(one line, shown once, stored hashed). The key authenticates `POST /api/ops/v1/health-events/`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from clusters.ingest import monitoring_source_create
from common.exceptions import DomainError


class Command(BaseCommand):
    help = "Create a monitoring source and print its ingestion key (shown once, stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A unique name, e.g. prometheus-dc1.")

    def handle(self, *args, name: str, **options):
        try:
            _, raw = monitoring_source_create(name=name)
        except DomainError as exc:
            raise CommandError(f"{exc.message} [{exc.code}]") from exc
        self.stdout.write(raw)
