"""Record a payment from the command line (an operator's bank import, a script):

    python manage.py record_payment TENANT_SLUG 400000.00 --reference WIRE-1 \
        --value-date 2026-12-10 [--method wire] [--invoice INV-2026-000001 ...] --by USERNAME

Goes through the same service as the admin form (billing/payments.py) and records the operator
named by `--by` (required: every operator write names who did it).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing import payments
from billing.choices import PaymentMethod
from billing.models import Invoice
from common.exceptions import DomainError
from leasing.models import Tenant


class Command(BaseCommand):
    help = "Record a tenant's payment and apply it (named invoices, else oldest due first)."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="Tenant slug.")
        parser.add_argument("amount", help="Amount, e.g. 400000.00")
        parser.add_argument("--reference", required=True)
        parser.add_argument("--value-date", required=True, type=dt.date.fromisoformat)
        parser.add_argument("--method", default=PaymentMethod.WIRE, choices=PaymentMethod.values)
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--invoice", action="append", default=None, help="Invoice number.")
        parser.add_argument("--by", required=True, help="Username of the operator recording it.")

    def handle(self, *args, **options):
        try:
            tenant = Tenant.objects.get(slug=options["tenant"])
            actor = get_user_model().objects.get(username=options["by"], is_staff=True)
        except (Tenant.DoesNotExist, get_user_model().DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
        if not actor.has_perm("billing.add_payment"):
            raise CommandError(f"{actor} may not record payments (billing.add_payment).")
        invoice_ids = None
        if options["invoice"]:
            found = dict(
                Invoice.objects.filter(tenant=tenant, number__in=options["invoice"]).values_list(
                    "number", "pk"
                )
            )
            missing = [n for n in options["invoice"] if n not in found]
            if missing:
                raise CommandError(f"Not this tenant's invoices: {', '.join(missing)}")
            invoice_ids = [found[n] for n in options["invoice"]]
        try:
            payment = payments.payment_record(
                tenant=tenant,
                amount=options["amount"],
                value_date=options["value_date"],
                reference=options["reference"],
                method=options["method"],
                currency=options["currency"],
                invoices=invoice_ids,
                actor=actor,
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} [{exc.code}] {exc.extra}") from None
        left = next(
            (s.available for s in payments.sources(tenant.pk) if s.payment_id == payment.pk), 0
        )
        self.stdout.write(f"Recorded payment {payment.pk} ({payment.amount}); unapplied {left}.")
