"""`manage.py create_api_key <tenant-slug>`: print a new API key for the tenant (one line)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from common.exceptions import DomainError
from leasing.api_keys import api_key_create
from leasing.models import Tenant


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it on stdout (shown once, stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("tenant_slug")
        parser.add_argument("--name", default="", help="A label for the key.")
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="Expire the key after N days."
        )

    def handle(self, *args, tenant_slug: str, name: str, expires_in_days: int | None, **options):
        tenant = Tenant.objects.filter(slug=tenant_slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {tenant_slug!r}.")
        expires_at = None
        if expires_in_days is not None:
            if not 0 < expires_in_days <= 3650:
                raise CommandError("--expires-in-days must be between 1 and 3650.")
            expires_at = timezone.now() + dt.timedelta(days=expires_in_days)
        try:
            _, raw = api_key_create(tenant=tenant, name=name, expires_at=expires_at)
        except DomainError as exc:
            raise CommandError(f"{exc.message} [{exc.code}]") from exc
        self.stdout.write(raw)
