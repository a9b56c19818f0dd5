"""Browser tests: a real Chromium (the operating system's package) driven by playwright.

Screenshots of every page visited are saved under `artifacts/screenshots/` for review. Where
Chromium is missing the tests skip, except when `REQUIRE_BROWSER=1` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Flags for a root, offline, headless machine: no sandbox, no background network chatter.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    """A headless Chromium for one test.

    playwright's sync API runs an event loop in the test thread while it is started; Django
    would then refuse ORM calls from that thread (they are still synchronous and safe here), so
    the override lives exactly as long as the browser and never reaches other tests.
    """
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (REQUIRE_BROWSER=1) but not installed")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()
        # Django keys connections by context, and playwright's loop gives this test its own:
        # close what the test opened here, or its session outlives the test database.
        connections.close_all()


@pytest.fixture
def operator_page(browser, live_server, django_user_model):
    """A logged-in operator's page on the live server; `shot(name)` saves a screenshot."""
    django_user_model.objects.create_superuser("operator", "op@landlord.example", "pw-browser")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw-browser")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    page.base_url = live_server.url
    page.shot = shot
    yield page
    context.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The demo journeys (test_demo_journeys.py) commit the full-scale demo for their module
    and empty the database with `flush` when it ends, as transactional tests do: run them last,
    after every test that relies on what migrations put in the database (the roles, the beat
    schedules). pytest-django has already put transactional tests after the others."""
    last = [item for item in items if item.path.name == "test_demo_journeys.py"]
    items[:] = [item for item in items if item not in last] + last
