"""Cross-app helpers: the domain error base, money rounding and contract-time arithmetic."""
