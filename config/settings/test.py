"""Test settings: the base settings with fast password hashing, a quiet log, a `flush` the
tamper guards let through, and the test client's `login()` allowed past the login lockout
(see `tests.login_backend`)."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# django-axes as in production, but the test client's request-less `login()` still works.
AUTHENTICATION_BACKENDS = ["tests.login_backend.LockoutBackend", *AUTHENTICATION_BACKENDS[1:]]  # noqa: F405
# Tests clear the cache between tests: never a Redis that CACHE_URL may share with others.
CACHES = caches_from_url("")  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Django empties every table between transactional tests with `flush`: let it through the
# tamper guards, and only it (common/tamper.py). Tests themselves run with the guards on.
FLUSH_BYPASSES_TAMPER_GUARDS = True
# Tests run with whatever broker is configured; without one, tasks run eagerly in-process.
