"""Invoices in advance, proration, credit notes, billing runs."""
