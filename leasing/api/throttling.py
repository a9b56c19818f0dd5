"""Per-key rate limit: 429 with `Retry-After` (DRF computes it from the window).

The counter lives in Django's default cache. With the default per-process LocMem cache each
worker process counts on its own (the effective limit is N workers × the rate); set
`CACHE_URL=redis://...` in production for one shared count. Throttling protects capacity;
it is not a security control.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_RATE = "1200/min"


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

    def get_cache_key(self, request, view) -> str | None:
        key = getattr(request, "auth", None)
        prefix = getattr(key, "prefix", None)
        if prefix is None:
            return None  # unauthenticated requests are refused before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": prefix}
