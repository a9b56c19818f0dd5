"""Billing models: invoices, credit notes, number series and billing runs.

The rules live in `billing/planning.py` (what a lease owes) and `billing/services.py` (the
writes); these models state the invariants that must hold whatever code writes them, as
database constraints:

* exactly one rent invoice (and at most one holdover invoice) per lease and calendar month,
  among the invoices that hold the month: every one except a void one resolved `reissue`, whose
  month the next run bills again under a new number. A void resolved `waive` keeps the month:
  it is never billed again;
* at most one supplementary invoice per lease, month and cause (same rule for voids): an end
  that moved later inside an invoiced month is billed once for that move;
* money is `Decimal` to the cent, never negative, in an ISO 4217 currency;
* a document has a number if and only if it is issued (numbers are gapless per kind and year,
  assigned at issue);
* the database refuses tampering, on PostgreSQL and on SQLite alike (triggers of migration
  0005), whatever writes — the ORM, raw SQL, the admin, a shell. Once a document is issued
  (issued, paid or void) its number, parties, period, money and dates never change and it is
  never deleted; its lines are never inserted, changed or deleted. Statuses only move along
  `INVOICE_MOVES` / `CREDIT_NOTE_MOVES` (billing/choices.py): nothing goes backwards or skips
  a step. `paid_at` is set only by the move into PAID, `voided_at` and `void_reason` only by
  the move into VOID; a paid or void invoice's overdue flag stays put; a billing run may only
  be unlinked (deleting the run). An invoice with issued credit notes is never voided, and no
  credit note is issued against a draft or void invoice. A number series (lease numbers'
  too) starts at 0 and is never deleted, renamed or moved back: raising it is all the issuing
  step does, and all the database lets through. TRUNCATE of these tables is refused. The one
  bypass is explicit maintenance (common/tamper.py), used by the test runner's flush and the
  seed benchmark's throwaway database, nothing else;
* every operator write names its actor (`issued_by`, `paid_by`, `voided_by`; null when the
  scheduler did it). Actors are protected: a user who acted on money is deactivated, not
  deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from common.display import day
from common.fields import money_field
from common.money import DEFAULT_CURRENCY, format_money
from leasing.models import Lease, LeaseLine, Tenant

from .choices import (
    BillingRunStatus,
    ContactRole,
    CreditNoteKind,
    CreditNoteStatus,
    InvoiceKind,
    InvoiceStatus,
    LedgerAccount,
    PaymentMethod,
    PostingKind,
    ReminderStep,
    SeriesKind,
    VoidResolution,
)

ISO_4217 = r"^[A-Z]{3}$"
# The rows that hold their slot (lease, kind, month) or (lease, month, cause): all but a void
# resolved `reissue`, which gives the slot back to the next billing run.
HOLDS_SLOT = ~Q(status=InvoiceStatus.VOID, void_resolution=VoidResolution.REISSUE)


def actor_field(help_text: str) -> models.ForeignKey:
    """Who did an operator write (null: the scheduler). PROTECT: documents keep their actors.

    Not indexed: nothing looks documents up by actor on a hot path, and every index is paid
    for by the billing run, which writes and issues thousands of documents at once."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text=f"{help_text} (empty: the billing scheduler).",
    )


class BillingRun(models.Model):
    """One run of the billing job: what it billed as of `as_of`, through month `period`.

    `status` STARTED is the in-progress state: a run found STARTED was interrupted (a killed
    worker, a lost database) and is simply run again, since every step is idempotent. A
    fanned-out run is DISPATCHED once every per-lease task is published; the counts then grow
    as the tasks commit (each in the same transaction as the documents it counts).
    """

    run_date = models.DateField(help_text="UTC date of the run.")
    period = models.DateField(help_text="Last calendar month billed (first day of the month).")
    as_of = models.DateTimeField(help_text="The instant the run billed as of.")
    status = models.CharField(
        max_length=16, choices=BillingRunStatus.choices, default=BillingRunStatus.STARTED
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    leases_scanned = models.PositiveIntegerField(default=0)
    invoices_issued = models.PositiveIntegerField(default=0)
    credit_notes_issued = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-run_date", "-period"]
        constraints = [
            models.UniqueConstraint(fields=["run_date", "period"], name="billingrun_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"Billing run {self.run_date} through {self.period:%Y-%m} ({self.status})"


class NumberSeries(models.Model):
    """The last number used per document kind and year. Gapless: the row is locked
    (`select_for_update`) and incremented in the same transaction that issues the document, so
    a rolled-back issue gives its number back. The database refuses any other edit: a new
    series starts at 0, `last_value` never goes down, a series is never deleted."""

    kind = models.CharField(max_length=16, choices=SeriesKind.choices)
    year = models.PositiveSmallIntegerField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["kind", "year"]
        verbose_name_plural = "number series"
        constraints = [
            models.UniqueConstraint(fields=["kind", "year"], name="numberseries_kind_year"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} numbers {self.year}: {self.last_value:,} issued"


class Invoice(models.Model):
    """One lease's charges for one calendar month of its contract zone.

    `period` is the first day of the month; `[period_start, period_end)` are that month's local
    midnights as UTC instants. Rent invoices are issued in advance, holdover invoices in
    arrears. `total` is the sum of the lines, fixed at issue. `due_at` is the scan column of the
    overdue job (net 30 from issue).

    Slots (unique constraints, whatever the scheduler does):

    * RENT and HOLDOVER: one per (lease, kind, period) among the rows that hold the slot
      (`HOLDS_SLOT`: all but a void resolved `reissue`). So a month is billed once; voiding
      with `reissue` frees it for the next run, which bills it again under a new number;
      voiding with `waive` keeps it, and the month is never billed again.
    * SUPPLEMENTARY: one per (lease, period, cause) among the same rows. It `supplements` the
      month's rent invoice (the original) and bills what the month's invoices, net of credit
      notes, fall short of the rule once an end moved later inside it; `cause` names the move
      (`notice_withdrawn:<notice id>`), so one move is billed once. Rent and holdover rows have
      no `supplements` and a blank `cause`.
    * A void invoice says what follows (`void_resolution`), why (`void_reason`) and who
      (`voided_by`); a non-void one has no resolution.
    """

    number = models.CharField(max_length=20, null=True, blank=True, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="invoices")
    lease = models.ForeignKey(Lease, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=16, choices=InvoiceKind.choices, default=InvoiceKind.RENT)
    supplements = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="supplementary_invoices",
        db_index=False,  # a partial index below: only supplementary invoices have one
        help_text="The month's rent invoice this supplementary invoice adds to.",
    )
    cause = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="What a supplementary invoice bills for, e.g. notice_withdrawn:<notice id>.",
    )
    period = models.DateField(help_text="First day of the calendar month billed.")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, db_index=True
    )
    po_number = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="The lease's purchase order number as it stood when this was issued (frozen "
        "with the document).",
    )
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    total = money_field(default=0)
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = actor_field("Who issued it")
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = actor_field("Who marked it paid")
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = actor_field("Who voided it")
    void_reason = models.CharField(max_length=500, blank=True, default="")
    void_resolution = models.CharField(
        max_length=8, choices=VoidResolution.choices, blank=True, default="", db_default=""
    )
    is_overdue = models.BooleanField(default=False)
    billing_run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "lease_id", "kind"]
        constraints = [
            # Whatever the scheduler does (two beats, retries, a killed worker), a second
            # invoice for the same lease, kind and month is impossible. A void keeps the slot
            # unless it was resolved `reissue` (see the class docstring).
            models.UniqueConstraint(
                fields=["lease", "kind", "period"],
                condition=~Q(kind=InvoiceKind.SUPPLEMENTARY) & HOLDS_SLOT,
                name="invoice_one_per_lease_period",
            ),
            models.UniqueConstraint(
                fields=["lease", "period", "cause"],
                condition=Q(kind=InvoiceKind.SUPPLEMENTARY) & HOLDS_SLOT,
                name="invoice_supplement_once_per_cause",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=InvoiceKind.SUPPLEMENTARY, supplements__isnull=False) & ~Q(cause="")
                )
                | (~Q(kind=InvoiceKind.SUPPLEMENTARY) & Q(supplements__isnull=True, cause="")),
                name="invoice_supplement_has_original_and_cause",
            ),
            models.CheckConstraint(
                condition=Q(
                    status=InvoiceStatus.VOID,
                    void_resolution__in=[VoidResolution.REISSUE, VoidResolution.WAIVE],
                )
                | (~Q(status=InvoiceStatus.VOID) & Q(void_resolution="")),
                name="invoice_void_has_resolution",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_nonneg"),
            models.CheckConstraint(
                condition=Q(currency__regex=ISO_4217), name="invoice_currency_iso4217"
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="invoice_period_nonempty"
            ),
            models.CheckConstraint(
                condition=(Q(status=InvoiceStatus.DRAFT) & Q(number__isnull=True))
                | (
                    ~Q(status=InvoiceStatus.DRAFT)
                    & Q(number__isnull=False, issued_at__isnull=False, due_at__isnull=False)
                ),
                name="invoice_numbered_iff_issued",
            ),
            models.CheckConstraint(
                condition=(Q(status=InvoiceStatus.PAID) & Q(paid_at__isnull=False))
                | (~Q(status=InvoiceStatus.PAID) & Q(paid_at__isnull=True)),
                name="invoice_paid_has_paid_at",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="invoice_status_due"),
            models.Index(fields=["tenant", "period"], name="invoice_tenant_period"),
            # The tenant API's pages: newest first within one tenant, cut after a page.
            models.Index(fields=["tenant", "id"], name="invoice_tenant_id"),
            models.Index(
                fields=["supplements"],
                condition=Q(supplements__isnull=False),
                name="invoice_supplements",
            ),
        ]

    def __str__(self) -> str:
        if self.number:
            return self.number
        return (
            f"Draft {self.get_kind_display().lower()} invoice of {self.lease}, {self.period:%B %Y}"
        )

    @property
    def is_editable(self) -> bool:
        return self.status == InvoiceStatus.DRAFT


class InvoiceLine(models.Model):
    """The charge of one lease line for the days `[service_start, service_end)` of the period.

    `amount` follows the cumulative rule (billing/proration.py), so it is not always exactly
    `monthly_rate × days / days_in_month` rounded: the line's invoices sum to its accrual
    rounded once. `monthly_rate` is a snapshot (×1.5 for holdover lines: `rate_multiplier`).
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    lease_line = models.ForeignKey(
        LeaseLine, on_delete=models.PROTECT, related_name="invoice_lines"
    )
    description = models.CharField(max_length=300)
    service_start = models.DateTimeField()
    service_end = models.DateTimeField()
    days = models.PositiveIntegerField()
    days_in_month = models.PositiveSmallIntegerField()
    monthly_rate = money_field()
    rate_multiplier = models.DecimalField(max_digits=4, decimal_places=2, default=1)
    amount = money_field()

    class Meta:
        ordering = ["invoice", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "lease_line"], name="invoiceline_one_per_lease_line"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoiceline_amount_nonneg"),
            models.CheckConstraint(
                condition=Q(monthly_rate__gte=0), name="invoiceline_rate_nonneg"
            ),
            models.CheckConstraint(
                condition=Q(service_end__gte=F("service_start")), name="invoiceline_service_order"
            ),
        ]

    def __str__(self) -> str:
        return self.description


class CreditNote(models.Model):
    """A correction of one issued invoice: the days it billed that the lease no longer has, or
    what the lease is owed back on it (`kind`: early end, holdover, delivery, service credit,
    late-delivery cancellation). A service credit names its month (`period`): one per lease
    and month (unique constraint); its availability report is `availability_report`.

    Created DRAFT and issued with its number in the same transaction; issued credit notes are
    final (the database refuses any change but unlinking a deleted billing run).
    """

    number = models.CharField(max_length=20, null=True, blank=True, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="credit_notes")
    lease = models.ForeignKey(Lease, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    status = models.CharField(
        max_length=16, choices=CreditNoteStatus.choices, default=CreditNoteStatus.DRAFT
    )
    kind = models.CharField(
        max_length=16,
        choices=CreditNoteKind.choices,
        default=CreditNoteKind.EARLY_END,
        db_default=CreditNoteKind.EARLY_END,
    )
    period = models.DateField(
        null=True,
        blank=True,
        help_text="A service credit's month (first day): whose availability it credits.",
    )
    po_number = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="The lease's purchase order number as it stood when this was issued (frozen "
        "with the document).",
    )
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    total = money_field(default=0)
    reason = models.CharField(max_length=500, blank=True, default="")
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = actor_field("Who issued it")
    billing_run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="credit_notes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="creditnote_total_nonneg"),
            models.CheckConstraint(
                condition=Q(currency__regex=ISO_4217), name="creditnote_currency_iso4217"
            ),
            models.CheckConstraint(
                condition=(Q(status=CreditNoteStatus.DRAFT) & Q(number__isnull=True))
                | (
                    Q(status=CreditNoteStatus.ISSUED)
                    & Q(number__isnull=False, issued_at__isnull=False)
                ),
                name="creditnote_numbered_iff_issued",
            ),
            # One service credit per lease and month, whatever the scheduler does.
            models.UniqueConstraint(
                fields=["lease", "period"],
                condition=Q(kind=CreditNoteKind.SERVICE),
                name="creditnote_service_once_per_month",
            ),
            models.CheckConstraint(
                condition=~Q(kind=CreditNoteKind.SERVICE) | Q(period__isnull=False),
                name="creditnote_service_has_period",
            ),
        ]
        indexes = [
            models.Index(fields=["lease", "invoice"], name="creditnote_lease_invoice"),
            # The tenant API's pages: newest first within one tenant, cut after a page.
            models.Index(fields=["tenant", "id"], name="creditnote_tenant_id"),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft credit note on {self.invoice}"


class CreditNoteLine(models.Model):
    """Credit against one invoice line, for the days `[service_start, service_end)`."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(
        InvoiceLine, on_delete=models.PROTECT, related_name="credit_lines"
    )
    lease_line = models.ForeignKey(LeaseLine, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300)
    service_start = models.DateTimeField()
    service_end = models.DateTimeField()
    days = models.PositiveIntegerField()
    amount = money_field()

    class Meta:
        ordering = ["credit_note", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="creditnoteline_amount_pos"),
        ]

    def __str__(self) -> str:
        return self.description


# --- receivables (billing/payments.py) and the revenue ledger (billing/ledger.py) -------------
#
# Append-only: payments, their reversals, applications, refunds and ledger postings are never
# changed or deleted (database guards of migration 0006, both engines). A mistake is undone by
# a new row that says who and why; balances are sums of these rows, never typed in.

ONE_SOURCE = Q(payment__isnull=False, credit_note__isnull=True) | Q(
    payment__isnull=True, credit_note__isnull=False
)


class Payment(models.Model):
    """Money a tenant sent: what, when it was value-dated, how, and who recorded it.

    What the payment still holds (its unapplied cash) is its amount less what was applied to
    invoices and refunded, or nothing once reversed."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="payments")
    amount = money_field()
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    value_date = models.DateField(help_text="The date the bank credited the money.")
    reference = models.CharField(max_length=200, help_text="The bank's or the tenant's reference.")
    method = models.CharField(max_length=8, choices=PaymentMethod.choices)
    recorded_at = models.DateTimeField()
    recorded_by = actor_field("Who recorded it")

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_pos"),
            models.CheckConstraint(
                condition=Q(currency__regex=ISO_4217), name="payment_currency_iso4217"
            ),
            models.CheckConstraint(condition=~Q(reference=""), name="payment_has_reference"),
        ]
        indexes = [
            models.Index(fields=["tenant", "id"], name="payment_tenant_id"),
            models.Index(fields=["recorded_at"], name="payment_recorded_at"),
        ]

    def __str__(self) -> str:
        return f"Payment {self.reference} ({format_money(self.amount, self.currency)})"


class PaymentReversal(models.Model):
    """A payment recorded by mistake, undone: its applications are reversed with it."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="reversal")
    reason = models.CharField(max_length=500)
    reversed_at = models.DateTimeField()
    reversed_by = actor_field("Who reversed it")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="paymentreversal_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Reversal of {self.payment}"


class Application(models.Model):
    """Money of one source (a payment or an issued credit note) applied to one invoice.

    Negative rows undo earlier ones (a reversed payment). An invoice's balance at any instant
    is its total less the sum of its rows applied up to then; a source's unapplied amount is
    what it holds less the sum of its rows."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="applications")
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="applications"
    )
    credit_note = models.ForeignKey(
        CreditNote, null=True, blank=True, on_delete=models.PROTECT, related_name="applications"
    )
    amount = money_field()
    applied_at = models.DateTimeField()
    applied_by = actor_field("Who applied it")

    class Meta:
        ordering = ["applied_at", "id"]
        constraints = [
            models.CheckConstraint(condition=ONE_SOURCE, name="application_one_source"),
            models.CheckConstraint(condition=~Q(amount=0), name="application_amount_nonzero"),
        ]
        indexes = [
            models.Index(fields=["invoice", "applied_at"], name="application_invoice_at"),
            models.Index(fields=["tenant", "applied_at"], name="application_tenant_at"),
        ]

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.invoice.currency)} to {self.invoice}"


class Refund(models.Model):
    """Unapplied money given back to the tenant, drawn from one source."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    credit_note = models.ForeignKey(
        CreditNote, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    amount = money_field()
    reference = models.CharField(max_length=200)
    refunded_at = models.DateTimeField()
    refunded_by = actor_field("Who refunded it")

    class Meta:
        ordering = ["-refunded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=ONE_SOURCE, name="refund_one_source"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_pos"),
        ]

    def __str__(self) -> str:
        source = self.payment or self.credit_note
        amount = format_money(self.amount, source.currency if source else DEFAULT_CURRENCY)
        return f"Refund {self.reference} to {self.tenant.name} ({amount})"


class Posting(models.Model):
    """One balanced line of the revenue ledger: `amount` debited to `debit` and credited to
    `credit`. Each row balances on its own (two different accounts, one positive amount), so
    the ledger's debits equal its credits by construction; the CSV export writes each posting
    as its debit and credit rows. `day` is the accounting date (UTC)."""

    day = models.DateField()
    posted_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=PostingKind.choices)
    debit = models.CharField(max_length=16, choices=LedgerAccount.choices)
    credit = models.CharField(max_length=16, choices=LedgerAccount.choices)
    amount = money_field()
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", db_index=False)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    credit_note = models.ForeignKey(
        CreditNote,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="posting_amount_pos"),
            models.CheckConstraint(condition=~Q(debit=F("credit")), name="posting_two_accounts"),
        ]
        indexes = [
            models.Index(fields=["day"], name="posting_day"),
            models.Index(fields=["tenant", "day"], name="posting_tenant_day"),
        ]

    def __str__(self) -> str:
        accounts = f"{self.get_debit_display()} / {self.get_credit_display()}"
        amount = format_money(self.amount, self.currency)
        return (
            f"{day(self.day)} {self.get_kind_display()} · {self.tenant.name}: {accounts} {amount}"
        )


class RevenueSchedule(models.Model):
    """How much of one document line is recognized: `amount` (negative for a credit note
    line, 0 once its invoice is void) spread by time over `[service_start, service_end)`.

    `recognized` is what the ledger's recognition postings of this line add up to (the daily
    job's cursor, written in the same transaction as those postings); `open` until it equals
    `amount` after the service ended."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", db_index=False)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    credit_note = models.ForeignKey(
        CreditNote,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    amount = money_field()
    service_start = models.DateTimeField()
    service_end = models.DateTimeField()
    recognized = money_field(default=0)
    open = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(invoice__isnull=False, credit_note__isnull=True)
                | Q(invoice__isnull=True, credit_note__isnull=False),
                name="schedule_one_document",
            ),
        ]
        indexes = [
            models.Index(
                fields=["service_start"], condition=Q(open=True), name="schedule_open_start"
            ),
            models.Index(fields=["invoice"], name="schedule_invoice"),
        ]

    def __str__(self) -> str:
        document = self.invoice or self.credit_note
        currency = document.currency if document else DEFAULT_CURRENCY
        return (
            f"Revenue of {document}, {day(self.service_start)} to {day(self.service_end)}: "
            f"{format_money(self.recognized, currency)} of "
            f"{format_money(self.amount, currency)} recognized"
        )


class RecognitionRun(models.Model):
    """One day of revenue recognized: claimed by inserting this row in the transaction that
    writes the day's postings, so a day is recognized once whatever the scheduler does."""

    day = models.DateField(unique=True)
    cutoff = models.DateTimeField(help_text="Recognized through this instant (end of the day).")
    ran_at = models.DateTimeField()
    postings = models.PositiveIntegerField(default=0)
    amount = money_field(default=0, help_text="Net revenue recognized by this run.")

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Recognition {self.day}"


class Contact(models.Model):
    """Someone at a tenant to write to about money: billing (reminders go here), operations,
    legal."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    role = models.CharField(max_length=16, choices=ContactRole.choices)
    name = models.CharField(max_length=200, blank=True, default="")
    email = models.EmailField()

    class Meta:
        ordering = ["tenant", "role", "email"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "role", "email"], name="contact_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.email} ({self.role})"


class Reminder(models.Model):
    """One step of the dunning schedule for one invoice: unique, so it goes out once. `sent`
    false: a step skipped because a later one was already due when the job ran (after
    downtime, only the latest reminder is sent)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders")
    step = models.CharField(max_length=16, choices=ReminderStep.choices)
    sent = models.BooleanField(default=True)
    at = models.DateTimeField()
    recipients = models.JSONField(default=list, blank=True)
    balance = money_field(help_text="What the invoice still owed when the reminder went out.")

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="reminder_once_per_step"),
        ]

    def __str__(self) -> str:
        return f"Reminder on {self.invoice}, {self.get_step_display()}"


class AvailabilityReport(models.Model):
    """A lease's availability over one closed calendar month of its contract zone, computed
    once (billing/service_credits.py) and kept: the figures per line, the incidents and
    windows behind them, and the service credit note it issued (none when nothing was owed).

    One per lease and month (unique constraint): its existence is what tells the runs the
    month was settled. `report` is `{"lines": [...]}`, each line with `line`, `nodes`,
    `in_service_minutes`, `downtime_minutes`, `incident_minutes`, `maintenance_minutes`,
    `availability` (percent), `tier`, `month_rent`, `credit`, `incidents[]` (with the
    performance model's estimate of compute lost) and `windows[]`; minutes are decimal strings.
    """

    lease = models.ForeignKey(Lease, on_delete=models.PROTECT, related_name="availability_reports")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    period = models.DateField(help_text="First day of the calendar month.")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    computed_at = models.DateTimeField()
    in_service_us = models.BigIntegerField(help_text="In-service node-time, microseconds.")
    downtime_us = models.BigIntegerField(help_text="Downtime node-time, microseconds.")
    credit = money_field(default=0)
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY)
    report = models.JSONField(default=dict)
    credit_note = models.OneToOneField(
        CreditNote,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="availability_report",
    )
    billing_run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-period", "lease_id"]
        constraints = [
            models.UniqueConstraint(fields=["lease", "period"], name="availability_once_per_month"),
            models.CheckConstraint(condition=Q(credit__gte=0), name="availability_credit_nonneg"),
            models.CheckConstraint(
                condition=Q(downtime_us__gte=0) & Q(downtime_us__lte=F("in_service_us")),
                name="availability_downtime_within_service",
            ),
        ]

    def __str__(self) -> str:
        return f"Availability of {self.lease.number} · {self.tenant.name}, {self.period:%B %Y}"
