"""Rate limits of the tenant API: 429 `throttled` with `Retry-After`.

* Per API key, for authenticated requests (`API_KEY_THROTTLE_RATE`).
* Per client address, for requests whose key is refused (`API_INVALID_KEY_THROTTLE_RATE`;
  `common/api/throttling.py`, shared with the operator ingestion API).

Throttling protects capacity; it is not a security control, so when the cache is unreachable
requests are let through (and logged) rather than every tenant request failing.
"""

from __future__ import annotations

from common.api.throttling import (
    DEFAULT_INVALID_KEY_RATE,
    InvalidKeyThrottle,
    SettingsRateThrottle,
    count_refused_key,
)

DEFAULT_RATE = "1200/min"

__all__ = [
    "DEFAULT_INVALID_KEY_RATE",
    "DEFAULT_RATE",
    "ApiKeyRateThrottle",
    "InvalidKeyThrottle",
    "SettingsRateThrottle",
    "count_refused_key",
]


class ApiKeyRateThrottle(SettingsRateThrottle):
    scope = "api_key"
    rate_setting = "API_KEY_THROTTLE_RATE"
    default_rate = DEFAULT_RATE

    def get_cache_key(self, request, view) -> str | None:
        key = getattr(request, "auth", None)
        prefix = getattr(key, "prefix", None)
        if prefix is None:
            return None  # unauthenticated requests are refused before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": prefix}
