"""Shared pytest fixtures."""

import importlib

import pytest
from django.db import connection

# The accelerator catalog is data loaded by a migration. A transactional test (real commits:
# racing processes, real workers, browsers) ends with a flush that deletes it; reload it before
# the next database test with the migration's own idempotent loader.
CATALOG_MIGRATION = "clusters.migrations.0002_accelerator_catalog"


@pytest.fixture(autouse=True)
def _accelerator_catalog(request, django_db_blocker):
    if request.node.get_closest_marker("django_db") is None and not {
        "db",
        "transactional_db",
    } & set(request.fixturenames):
        yield
        return
    from django.apps import apps

    migration = importlib.import_module(CATALOG_MIGRATION)
    with django_db_blocker.unblock():
        model = apps.get_model("clusters", "AcceleratorModel")
        if model.objects.count() < len(migration.CATALOG):
            migration.load(apps, None)
    yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached figures and throttle counters are keyed by
    primary keys and instants that test databases reuse."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    """Skip tests marked `postgres` when the suite runs on SQLite (the default)."""
    from django.conf import settings

    if not settings.configured or connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def event_consumer(monkeypatch):
    """Register test consumers of domain events for the test's duration only:
    `event_consumer(kinds, fn=None, name="tests.recorder")` returns the list of events the
    consumer received (`fn(event)`, if given, runs after recording: raise there to fail)."""
    from common import events

    monkeypatch.setattr(events, "_consumers", dict(events._consumers))

    def register(kinds, fn=None, name="tests.recorder"):
        received = []

        def consume(event):
            received.append(event)
            if fn is not None:
                fn(event)

        events.register(kinds, name, consume)
        return received

    return register
