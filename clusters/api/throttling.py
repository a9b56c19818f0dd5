"""The ingestion rate per monitoring source: `OPS_INGEST_THROTTLE_RATE` (or the DRF throttle
scope `health_events`), 429 `throttled` with `Retry-After` beyond it. A batch holds up to
`clusters.ingest.MAX_BATCH` events, so the default lets one source push 60,000 events a minute.
"""

from __future__ import annotations

from common.api.throttling import SettingsRateThrottle

DEFAULT_RATE = "60/min"


class MonitoringSourceRateThrottle(SettingsRateThrottle):
    scope = "health_events"
    rate_setting = "OPS_INGEST_THROTTLE_RATE"
    default_rate = DEFAULT_RATE

    def get_cache_key(self, request, view) -> str | None:
        source = getattr(request, "auth", None)
        prefix = getattr(source, "prefix", None)
        if prefix is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": prefix}
