"""State and kind enumerations of billing, and the groups of them the rules use
(docs/rules/billing.md)."""

from django.db import models

from leasing.choices import LeaseStatus


class InvoiceStatus(models.TextChoices):
    """DRAFT → ISSUED → PAID | VOID. Only a draft may change its amounts or lines."""

    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


# The status moves an invoice may make, and nothing else. The database enforces a frozen copy
# (billing migration 0005); tests/billing/test_tamper.py checks that the two agree, so adding
# a status means a new migration with the extended table.
INVOICE_MOVES = frozenset(
    {
        (InvoiceStatus.DRAFT, InvoiceStatus.ISSUED),
        (InvoiceStatus.ISSUED, InvoiceStatus.PAID),
        (InvoiceStatus.ISSUED, InvoiceStatus.VOID),
    }
)


class InvoiceKind(models.TextChoices):
    """Rent is billed in advance per calendar month; holdover in arrears per calendar month.
    A supplementary invoice bills a rent month again for what its invoices fell short of, once
    an end moved later inside it (a withdrawn notice): the upward twin of a credit note."""

    RENT = "rent", "Rent"
    HOLDOVER = "holdover", "Holdover"
    SUPPLEMENTARY = "supplementary", "Supplementary rent"


# Issued or paid: what counts as billed.
BILLED_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PAID)
# The kinds that bill rent: a month's rent invoice and its supplementary invoices.
RENT_KINDS = (InvoiceKind.RENT, InvoiceKind.SUPPLEMENTARY)
# The lease statuses billing never bills.
NOT_BILLED = (LeaseStatus.DRAFT, LeaseStatus.VOID)


class VoidResolution(models.TextChoices):
    """What follows a void (blank until the invoice is void). REISSUE: the next billing run
    bills the slot again under a new number. WAIVE: the slot stays taken and is never billed
    again; the amount is forgiven, on record with who voided it and why."""

    REISSUE = "reissue", "Re-issue on the next billing run"
    WAIVE = "waive", "Waive (never billed again)"


class CreditNoteStatus(models.TextChoices):
    """DRAFT only inside the transaction that builds it; ISSUED is final."""

    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"


CREDIT_NOTE_MOVES = frozenset({(CreditNoteStatus.DRAFT, CreditNoteStatus.ISSUED)})


class CreditNoteKind(models.TextChoices):
    """Why a credit note was issued. EARLY_END: a notice, reclaim or cancellation ended lines
    inside an invoiced month (and any other correction of rent downwards); HOLDOVER: a release
    confirmed earlier than a holdover invoice assumed; DELIVERY: rent invoiced for node-days
    before the nodes were accepted; SERVICE: the service credit a month's availability earned
    (one per lease and month, with its availability report); CANCELLATION: everything invoiced
    for a line the tenant cancelled for late delivery."""

    EARLY_END = "early_end", "Early end"
    HOLDOVER = "holdover", "Holdover"
    DELIVERY = "delivery", "Delivery"
    SERVICE = "service", "Service credit"
    CANCELLATION = "cancellation", "Late-delivery cancellation"


class SeriesKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class BillingRunStatus(models.TextChoices):
    """STARTED is the in-progress state: a run found STARTED was interrupted and is redone."""

    STARTED = "started", "Started (in progress)"
    DISPATCHED = "dispatched", "Dispatched to workers"
    DONE = "done", "Done"


class DocumentEvent:
    """Domain events billing emits when it issues a document (`common.events`): subject
    `invoice` or `credit_note`, payload `{"tenant", "lease", "number"}`, `occurred_at` = the
    issue instant."""

    INVOICE_ISSUED = "invoice.issued"
    CREDIT_NOTE_ISSUED = "credit_note.issued"
    SERVICE_CREDIT_ISSUED = "service_credit.issued"
