"""`manage.py demo_login`: create (or reset) the demo operator login, and print it with a new
API key of a demo tenant.

For the one-command demo only: it refuses to run with DEBUG off, so a production deployment
can never be given a known password by accident.
"""

from __future__ import annotations

import os

from axes.models import AccessAttempt
from axes.utils import reset as reset_lockouts
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leasing.api_keys import demo_key_for
from leasing.models import Tenant

DEMO_USERNAME = "operator"
DEMO_TENANT = "northwind-ai"
# A published demo credential; the command refuses to run with DEBUG off.
DEMO_PASSWORD = "landlord-demo"  # nosec B105


class Command(BaseCommand):
    help = "Create or reset the demo operator (superuser) and print the login. DEBUG only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=DEMO_USERNAME)
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--tenant", default=DEMO_TENANT, help="tenant slug for the API key")

    def handle(
        self, *args: object, username: str, password: str, tenant: str, **options: object
    ) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_login is for the local demo only (DEBUG is off).")
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@landlord.example"}
        )
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        if AccessAttempt.objects.filter(username=username).exists():
            reset_lockouts(username=username)  # a reset login must not stay locked out
        port = os.environ.get("PORT", "8000")
        self.stdout.write(f"Operator login: http://127.0.0.1:{port}/admin/")
        self.stdout.write(f"  username: {username}")
        self.stdout.write(f"  password: {password}")
        if Tenant.objects.filter(slug=tenant).exists():
            key = demo_key_for(tenant)
            self.stdout.write(f"Tenant API ({tenant}): http://127.0.0.1:{port}/api/docs/")
            self.stdout.write(
                f"  curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{port}/api/v1/leases/"
            )
