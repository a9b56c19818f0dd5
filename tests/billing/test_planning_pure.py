"""Billing planning stays pure (docs/rules/billing.md): `billing/planning.py` computes plans from
rows `billing/loading.py` read and never touches the database itself."""

import ast
from pathlib import Path

PLANNING = Path(__file__).resolve().parents[2] / "billing" / "planning.py"


def database_uses(source: str) -> list[str]:
    """Imports of `django.db` and `.objects` manager lookups in `source`, with their lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("django.db"):
            found.append(f"{node.lineno}: from {node.module}")
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("django.db")
            ]
        elif isinstance(node, ast.Attribute) and node.attr in {"objects", "_default_manager"}:
            found.append(f"{node.lineno}: .{node.attr}")
    return found


def test_the_check_sees_a_query():
    assert database_uses("from django.db import transaction\nInvoice.objects.get(pk=1)\n") == [
        "1: from django.db",
        "2: .objects",
    ]


def test_planning_reads_nothing_from_the_database():
    assert database_uses(PLANNING.read_text(encoding="utf-8")) == []
