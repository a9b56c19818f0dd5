"""Every operator page, walked from the URLconf, and a concrete URL to GET for each on the demo.

`operator_urls()` is every route under /operator/ and every admin route served by the project's
own code; `demo_pages()` adds the admin index, every admin changelist and one change page per
registered model, and fills each route's arguments (and a query for the pages that answer one)
from the seeded demo (`manage.py seed_demo`). The permission tests walk the first, the
constant-query test (tests/operator/test_page_queries.py) and the page benchmark
(bench/bench_pages.py) the second, so a page added later is covered without editing either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

PROJECT = ("config", "common", "clusters", "leasing", "billing", "reclaim", "webhooks")
# Pages that are buttons: a GET answers 405 (require_POST), there is nothing to render.
POST_ONLY = {"operator:reclaim:reject", "operator:reclaim:score"}


def _walk(
    patterns: list, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif p.name:
            yield prefix + str(p.pattern), namespace + p.name, p


def operator_urls() -> list[tuple[str, URLPattern]]:
    """Every operator page: all of /operator/, and the admin URLs served by project code (the
    admin's own views check the model permissions themselves)."""
    found = []
    for route, name, pattern in _walk(get_resolver().url_patterns):
        ours = pattern.callback.__module__.split(".")[0] in PROJECT
        if route.startswith("operator/") or (route.startswith("admin/") and ours):
            found.append((name, pattern))
    return sorted(found, key=lambda item: item[0])


def _route_arguments() -> dict[str, dict[str, object]]:
    """Sample arguments per route name, from the demo: the biggest cluster, a leased node, the
    most recent decision, invoice and availability report, the first lease line."""
    from billing.models import AvailabilityReport, Invoice
    from clusters.models import Cluster
    from leasing.models import Allocation, LeaseLine
    from reclaim.models import ReclaimDecision

    cluster = Cluster.objects.order_by("-gpus_per_node", "slug").get(slug="c1-h100")
    node = Allocation.objects.select_related("node").order_by("pk").first().node
    return {
        "billing:invoice_print": {"pk": Invoice.objects.order_by("-pk").first().pk},
        "admin:leasing_capacity_cluster": {"cluster_id": cluster.pk},
        "operator:capacity-cluster": {"slug": cluster.slug},
        "operator:fleet-node": {"hostname": node.hostname},
        "operator:availability-report": {"pk": AvailabilityReport.objects.order_by("-pk")[0].pk},
        "admin:billing_cancel_late_delivery": {"line_id": LeaseLine.objects.order_by("pk")[0].pk},
        "decision": {"pk": ReclaimDecision.objects.order_by("-pk").first().pk},
    }


def _queries(today: dt.date) -> dict[str, list[tuple[str, str]]]:
    """The pages that answer a question, asked one as an operator would (label, query)."""
    from clusters.models import AcceleratorModel, Site
    from leasing.models import Lease

    campus = Site.objects.get(slug="campus-1").pk
    hopper = AcceleratorModel.objects.get(slug="h100").pk
    on = (today + dt.timedelta(days=120)).isoformat()
    lease = Lease.objects.order_by("pk").first().number
    return {
        "operator:revenue-at-risk": [
            ("campus 1", f"kind=site&site={campus}&on={on}"),
            ("H100", f"kind=model&model={hopper}&on={on}"),
        ],
        "operator:search": [("a tenant", "q=northwind"), ("a hostname", "q=c1-h100-0001")],
        "operator:fleet-node-search": [("a hostname", "q=c1-h100-0001")],
        "operator:fleet-handover": [("a lease", f"lease={lease}")],
        "operator:reclaim:list": [
            ("the planner", f"plan=1&gpu_equivalents=8000&reference=H100&notice_date={today}"),
        ],
    }


def demo_pages(today: dt.date) -> list[tuple[str, str]]:
    """(label, URL) of every operator page to GET on the seeded demo, in a stable order."""
    args = _route_arguments()
    asked = _queries(today)
    pages: list[tuple[str, str]] = []
    for name, pattern in operator_urls():
        if name in POST_ONLY:
            continue
        needed = set(pattern.pattern.converters)
        kwargs = args.get(name, {})
        if name.startswith("operator:reclaim:") and needed == {"pk"}:
            kwargs = args["decision"]
        assert needed == set(kwargs), f"give {name} sample arguments in _route_arguments"
        url = reverse(name, kwargs=kwargs or None)
        pages.append((name, url))
        pages += [(f"{name} ({label})", f"{url}?{query}") for label, query in asked.get(name, [])]
    pages.append(("admin:index", reverse("admin:index")))
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        pages.append((f"admin {meta.label} list", changelist))
        first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        if first is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first])
            pages.append((f"admin {meta.label} change", change))
    return pages
