"""Coded refusals of the billing services (rendered by the API handler and admin actions)."""

from common.exceptions import Conflict, DomainError, InvalidInput, TransitionNotAllowed


class InvoiceNotDraft(TransitionNotAllowed):
    code = "invoice_not_draft"
    default_message = "Only a draft invoice can be changed or issued."


class InvoiceNotIssued(TransitionNotAllowed):
    code = "invoice_not_issued"
    default_message = "Only an issued invoice can be paid or voided."


class IssuedDocumentImmutable(Conflict):
    code = "issued_document_immutable"
    default_message = "Issued invoices and credit notes cannot be changed; issue a credit note."


class LeaseNotBillable(DomainError):
    code = "lease_not_billable"
    http_status = 409
    default_message = "This lease is not billed (draft or void)."


class PeriodOutsideLease(InvalidInput):
    code = "period_outside_lease"
    default_message = "The lease has nothing to bill in that period."


class InvalidPeriod(InvalidInput):
    code = "invalid_period"
    default_message = "A billing period is the first day of a calendar month."


class InvoiceHasCreditNotes(Conflict):
    code = "invoice_has_credit_notes"
    default_message = "This invoice was partly credited; it cannot be voided."


class InvoiceHasSupplements(Conflict):
    code = "invoice_has_supplements"
    default_message = (
        "This invoice has supplementary invoices; void them (to re-issue) before the original."
    )
