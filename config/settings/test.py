"""Test settings: the base settings with fast password hashing, a quiet log, and the test
client's `login()` allowed past the login lockout (see `tests.login_backend`)."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# django-axes as in production, but the test client's request-less `login()` still works.
AUTHENTICATION_BACKENDS = ["tests.login_backend.LockoutBackend", *AUTHENTICATION_BACKENDS[1:]]  # noqa: F405
# Tests clear the cache between tests: never a Redis that CACHE_URL may share with others.
CACHES = caches_from_url("")  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Tests run with whatever broker is configured; without one, tasks run eagerly in-process.
