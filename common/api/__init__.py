"""Plumbing shared by the tenant API: one error format, strict fields, bounded pagination."""
