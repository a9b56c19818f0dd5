"""Per-key rate limit: 429 with `Retry-After` (DRF computes it from the window).

The counter lives in Django's default cache. With the default per-process LocMem cache each
worker process counts on its own (the effective limit is N workers × the rate); set
`CACHE_URL=redis://...` in production for one shared count. Throttling protects capacity;
it is not a security control, so when the cache is unreachable requests are let through (and
logged) rather than every tenant request failing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_RATE = "1200/min"
CACHE_ERRORS = (RedisError, OSError)

logger = logging.getLogger(__name__)


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str:
        # Read at each request so settings overrides apply (tests, a benchmark settings file).
        rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
        return getattr(settings, "API_KEY_THROTTLE_RATE", None) or rates.get(
            self.scope, DEFAULT_RATE
        )

    def __init__(self) -> None:  # rate resolved per request, not at import
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as exc:
            logger.warning(
                "throttle: cache unavailable (%s); request let through", type(exc).__name__
            )
            return True

    def get_cache_key(self, request, view) -> str | None:
        key = getattr(request, "auth", None)
        prefix = getattr(key, "prefix", None)
        if prefix is None:
            return None  # unauthenticated requests are refused before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": prefix}
