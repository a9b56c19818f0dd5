"""Operator pages of the fleet (docs/rules/fleet.md): one module per page, routed by
`config/operator_urls.py`, each behind `common.access.operator_page`."""
