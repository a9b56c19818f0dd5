"""The tenant API's billing resources: invoices and credit notes (read-only)."""
