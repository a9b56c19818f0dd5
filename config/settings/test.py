"""Test settings: the base settings with fast password hashing and a quiet log."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests clear the cache between tests: never a Redis that CACHE_URL may share with others.
CACHES = caches_from_url("")  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Tests run with whatever broker is configured; without one, tasks run eagerly in-process.
