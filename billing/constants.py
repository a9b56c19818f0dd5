"""Billing parameters that are decisions, named once."""

# A month's rent invoice is issued this many days before the month starts (local midnight of
# the 1st in the contract zone). The daily run at 00:10 UTC therefore issues next month's
# invoices on the run at or after `1st − 7 days`; a first partial month is issued at
# commencement.
INVOICE_LOOKAHEAD_DAYS = 7
# Net 30: an invoice is due 30 days after it is issued.
PAYMENT_TERMS_DAYS = 30
# Leases that ended longer ago than this (and whose release is confirmed) are no longer
# scanned by the daily run; anything they still owe was billed long before.
SCAN_ENDED_WITHIN_DAYS = 400
# Leases billed per transaction by `billing_run` (bounded queries per chunk).
RUN_CHUNK_SIZE = 500
# Per-lease tasks published per broker round and their expiry (before the next daily scan).
FANOUT_CHUNK_SIZE = 200
BILL_LEASE_EXPIRES_S = 23 * 3600
NUMBER_PREFIX = {"invoice": "INV", "credit_note": "CN"}
NUMBER_DIGITS = 6
# Leases settled per service-credit transaction (availability reports and service credits);
# the scan publishes one task per chunk.
SERVICE_CREDIT_CHUNK = 500
