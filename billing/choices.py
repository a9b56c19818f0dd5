"""State and kind enumerations of billing."""

from django.db import models


class InvoiceStatus(models.TextChoices):
    """DRAFT → ISSUED → PAID | VOID. Only a draft may change its amounts or lines."""

    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class InvoiceKind(models.TextChoices):
    """Rent is billed in advance per calendar month; holdover in arrears per calendar month."""

    RENT = "rent", "Rent"
    HOLDOVER = "holdover", "Holdover"


class CreditNoteStatus(models.TextChoices):
    """DRAFT only inside the transaction that builds it; ISSUED is final."""

    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"


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
