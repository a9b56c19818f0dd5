"""Every operator page sits inside the operator layout, and every shown instant names its zone.

The pages are tests/operator/pages.py's walk on the seeded demo (every route under /operator/,
the admin routes served by project code, the admin index, lists and change pages), so a page
added later is checked without editing this file. A page rendered without the admin site's
context shows the stock "Django administration" header, no logout and no theme toggle; one
that skips templates/operator/base.html loses the operator stylesheet its charts and tables
are styled by (common/pages.py `render_operator` does both). The admin's own pages keep the
admin layout (header, logout, theme toggle) without the operator stylesheet.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from tests.operator.pages import demo_pages

pytestmark = pytest.mark.django_db

# Deliberately bare pages: a document to print or save, not a console page.
BARE = {"billing:invoice_print"}  # the tenant's invoice, printed to PDF from the browser
STYLESHEET = static("operator/operator.css")
CHART = re.compile(r'<svg [^>]*class="chart".*?</svg>', re.DOTALL)


@pytest.fixture
def operator_client(client, django_user_model):
    """A superuser's client on the seeded demo (the walk's route arguments come from it)."""
    call_command("seed_demo", scale=0.005, no_progress=True, stdout=io.StringIO())
    client.force_login(django_user_model.objects.create_superuser("op", "op@landlord.example"))
    return client


def test_every_operator_page_is_inside_the_operator_layout(operator_client):
    checked, charts, outside = 0, 0, {}
    for label, url in demo_pages(timezone.now().date()):
        if label.split(" (")[0] in BARE:
            continue
        response = operator_client.get(url)
        assert response.status_code == 200, label
        if not response["Content-Type"].startswith("text/html"):
            continue  # a download, not a page (the journal as CSV): nothing to lay out
        html = response.content.decode()
        missing = [
            what
            for what, present in (
                ("logout", 'id="logout-form"' in html),
                ("theme toggle", 'class="theme-toggle"' in html),
                ("site header", "Landlord operator" in html),
                ("not the stock header", "Django administration" not in html),
                ("operator stylesheet", STYLESHEET in html or not url.startswith("/operator/")),
                # common/plots.py draws ink in currentColor: the chart takes the theme's text.
                ("charts follow the theme", all("currentColor" in c for c in CHART.findall(html))),
            )
            if not present
        ]
        if missing:
            outside[label] = missing
        checked += 1
        charts += len(CHART.findall(html))
    assert checked > 60, "the walk found the operator pages"
    assert charts > 3, "the walk found the charts"
    assert outside == {}


def test_the_handover_and_incident_pages_name_the_zone_of_each_instant(operator_client):
    for name in ("operator:fleet-handover", "operator:fleet-incidents"):
        html = operator_client.get(reverse(name)).content.decode()
        shown = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d(?: [A-Za-z_/]+)?", html)
        assert len(shown) > 1, f"{name} shows its rows' instants, not only the time now"
        assert [t for t in shown if not t.endswith(" UTC")] == [], name
