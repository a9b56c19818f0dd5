"""Settings of the API benchmark's server: the base settings, production-like where it matters
for speed (DEBUG off, persistent connections), the bench URLconf (the API plus the floor
views), and a throttle rate no load generator reaches."""

from config.settings.base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.urls_api"
API_KEY_THROTTLE_RATE = "100000000/min"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
