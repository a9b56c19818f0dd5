"""Fill the PO number of the invoices and credit notes issued before 0010 from their lease.

The best record there is of what they were issued with: the lease's PO number now (it was
read live from the lease until then). Drafts are left blank: issuing sets it. Runs outside
one long transaction (`atomic = False`): one short transaction per batch of ids, so a
populated database is never locked for long. The guards let it through because `po_number`
is not yet among the frozen columns (0012 freezes it), as 0009 filled `kind` before
freezing it: no bypass is needed.
"""

from django.db import migrations, transaction
from django.db.models import Max, OuterRef, Subquery

BATCH = 5000


def fill_from_leases(apps, schema_editor):
    Lease = apps.get_model("leasing", "Lease")
    alias = schema_editor.connection.alias
    po = Subquery(Lease.objects.filter(pk=OuterRef("lease_id")).values("po_number")[:1])
    for name in ("Invoice", "CreditNote"):
        model = apps.get_model("billing", name)
        last = model.objects.using(alias).aggregate(last=Max("pk"))["last"] or 0
        for low in range(0, last, BATCH):
            with transaction.atomic(using=alias):
                model.objects.using(alias).filter(
                    pk__gt=low, pk__lte=low + BATCH, lease__po_number__gt=""
                ).exclude(status="draft").update(po_number=po)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("billing", "0010_documents_po_number")]

    operations = [
        migrations.RunPython(fill_from_leases, migrations.RunPython.noop, elidable=False),
    ]
