"""Every operator page reads the same number of queries whatever the size of the fleet.

The demo is seeded at two fleet sizes (the same leases, tenants and invoices; twice
times the nodes and allocations), each in a savepoint rolled back after it is measured, and
every page of tests/operator/pages.py (all of /operator/, every admin list and a change page
per model) is requested by a superuser at both: the counts must be equal. An N+1 over nodes,
allocations or list rows shows up as a difference. Timings are bench/bench_pages.py's.
"""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, reset_queries, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.models import Node
from tests.operator.pages import demo_pages

pytestmark = pytest.mark.django_db

SMALL, LARGER = 0.005, 0.01


def _queries_per_page(client, scale: float) -> tuple[int, dict[str, int]]:
    """Seed at `scale` in a savepoint, count each page's queries, roll the savepoint back."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        call_command("seed_demo", scale=scale, no_progress=True, stdout=io.StringIO())
        cache.clear()
        nodes = Node.objects.count()
        for label, url in demo_pages(timezone.now().date()):
            assert client.get(url).status_code == 200, label  # warm-up: caches, first runs
            reset_queries()  # each request clears the log the count reads
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            counts[label] = len(queries)
            assert response.status_code == 200, label
        transaction.set_rollback(True)
    return nodes, counts


def test_every_operator_page_reads_a_constant_number_of_queries(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@landlord.example"))
    small_nodes, small = _queries_per_page(client, SMALL)
    larger_nodes, larger = _queries_per_page(client, LARGER)
    assert larger_nodes >= 2 * small_nodes
    assert len(small) > 60, "the walk found the operator pages"
    differ = {label: (n, larger[label]) for label, n in small.items() if larger[label] != n}
    assert differ == {}, "queries grow with the fleet (small, larger)"
