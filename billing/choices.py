"""State and kind enumerations of billing, and the groups of them the rules use
(docs/rules/billing.md)."""

from django.db import models

from leasing.choices import LeaseStatus


class InvoiceStatus(models.TextChoices):
    """DRAFT → ISSUED → PARTIALLY_PAID → PAID, or ISSUED → VOID. Only a draft may change its
    amounts or lines. The paid statuses follow the invoice's balance, computed from what was
    applied to it (billing/payments.py): a reversed payment moves it back."""

    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


# The status moves an invoice may make, and nothing else. The database enforces a frozen copy
# (billing migrations 0005, then 0006 for the paid statuses); tests/billing/test_tamper.py
# checks that the two agree, so adding a status means a new migration with the extended table.
# The moves among ISSUED, PARTIALLY_PAID and PAID follow the balance both ways: a payment
# reversed by an operator (with its reason, billing/payments.py) moves the invoice back.
INVOICE_MOVES = frozenset(
    {
        (InvoiceStatus.DRAFT, InvoiceStatus.ISSUED),
        (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID),
        (InvoiceStatus.ISSUED, InvoiceStatus.PAID),
        (InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID),
        (InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.ISSUED),
        (InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_PAID),
        (InvoiceStatus.PAID, InvoiceStatus.ISSUED),
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


# Issued, partly or wholly paid: what counts as billed.
BILLED_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)
# What a tenant still owes on: issued and not yet paid in full.
OPEN_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)
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
    for a line cancelled for late delivery (`billing.cancellation`)."""

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
    # Subject `lease_line`: a line cancelled for late delivery, with its credit notes
    # (`billing.cancellation.announcement`).
    LINE_CANCELLED_LATE_DELIVERY = "line.cancelled_late_delivery"


class PaymentMethod(models.TextChoices):
    WIRE = "wire", "Wire transfer"
    ACH = "ach", "ACH"
    CHECK = "check", "Check"
    CARD = "card", "Card"
    OTHER = "other", "Other"


class LedgerAccount(models.TextChoices):
    """The five accounts of the revenue ledger (billing/ledger.py). Normal balances: AR and
    cash are debit accounts; deferred revenue, revenue and customer credit are credit ones."""

    AR = "ar", "Accounts receivable"
    DEFERRED = "deferred", "Deferred revenue"
    REVENUE = "revenue", "Revenue"
    CASH = "cash", "Cash"
    CUSTOMER_CREDIT = "customer_credit", "Customer credit"


class PostingKind(models.TextChoices):
    """What wrote a ledger posting: each is written by the transaction that does it."""

    INVOICE = "invoice", "Invoice issued"
    VOID = "void", "Invoice voided"
    CREDIT_NOTE = "credit_note", "Credit note issued"
    PAYMENT = "payment", "Payment received"
    APPLICATION = "application", "Applied to an invoice"
    UNAPPLICATION = "unapplication", "Application reversed"
    REVERSAL = "reversal", "Payment reversed"
    REFUND = "refund", "Refund"
    RECOGNITION = "recognition", "Revenue recognized"


class ReceivableEvent:
    """Domain events of receivables (`common.events`), announced to webhooks: subject
    `invoice` or `payment`, payload with `tenant`."""

    PAYMENT_APPLIED = "payment.applied"
    INVOICE_PAID = "invoice.paid"
    INVOICE_OVERDUE = "invoice.overdue"


class ContactRole(models.TextChoices):
    BILLING = "billing", "Billing"
    OPERATIONS = "operations", "Operations"
    LEGAL = "legal", "Legal"


class ReminderStep(models.TextChoices):
    """The dunning schedule: days from the due date (docs/rules/receivables.md)."""

    BEFORE_3 = "before_3", "3 days before due"
    AFTER_1 = "after_1", "1 day past due"
    AFTER_7 = "after_7", "7 days past due"
    AFTER_15 = "after_15", "15 days past due"
    AFTER_30 = "after_30", "30 days past due (escalated)"


REMINDER_OFFSETS = {
    ReminderStep.BEFORE_3: -3,
    ReminderStep.AFTER_1: 1,
    ReminderStep.AFTER_7: 7,
    ReminderStep.AFTER_15: 15,
    ReminderStep.AFTER_30: 30,
}


class StatementKind(models.TextChoices):
    """What a line of a tenant's statement records (billing/statement.py)."""

    INVOICE = "invoice", "Invoice issued"
    VOID = "void", "Invoice voided"
    CREDIT_NOTE = "credit_note", "Credit note issued"
    PAYMENT = "payment", "Payment received"
    REVERSAL = "reversal", "Payment reversed"
    REFUND = "refund", "Refund"
