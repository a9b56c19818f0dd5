"""Billing models (see billing/services.py for the rules)."""
