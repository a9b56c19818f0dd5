"""Rate limits shared by the APIs: 429 `throttled` with `Retry-After` (DRF computes it from the
window). The tenant API (`leasing/api/throttling.py`) and the operator ingestion API
(`clusters/api/`) both build on these.

* `SettingsRateThrottle`: a rate read from settings at each request (overrides apply), and let
  through when its cache is unreachable (throttling protects capacity, it is not a security
  control).
* Per client address, for requests whose key is refused (`API_INVALID_KEY_THROTTLE_RATE`):
  once an address has had that many refusals in the window, its next refused keys answer
  429 instead of 401 until the window moves on. Only refusals count and only refusals are
  throttled: a valid key is checked first and always served, so an attacker sharing an
  address with a client (NAT, a proxy) cannot lock it out. The address is DRF's
  (`REMOTE_ADDR`, or `X-Forwarded-For` behind `NUM_PROXIES` proxies).

The counters live in Django's default cache. With the default per-process LocMem cache each
worker process counts on its own (the effective limit is N workers × the rate); set
`CACHE_URL=redis://...` in production for one shared count.
"""

from __future__ import annotations

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_INVALID_KEY_RATE = "60/min"
CACHE_ERRORS = (RedisError, OSError)

logger = logging.getLogger(__name__)


class SettingsRateThrottle(SimpleRateThrottle):
    """A throttle whose rate is read from settings at each request (so overrides apply:
    tests, a benchmark settings file), and which lets requests through when its cache is
    unreachable."""

    rate_setting: str
    default_rate: str

    def get_rate(self) -> str:
        rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
        return getattr(settings, self.rate_setting, None) or rates.get(
            self.scope, self.default_rate
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


class InvalidKeyThrottle(SettingsRateThrottle):
    """Refused API keys per client address (see the module docstring)."""

    scope = "invalid_key"
    rate_setting = "API_INVALID_KEY_THROTTLE_RATE"
    default_rate = DEFAULT_INVALID_KEY_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def count_refused_key(request) -> None:
    """Record that `request`'s key was refused; raise `Throttled` if its address has been
    refused too often (the caller raises its 401 otherwise)."""
    throttle = InvalidKeyThrottle()
    if not throttle.allow_request(request, None):
        raise exceptions.Throttled(wait=throttle.wait())
