"""Results cached by what they are computed from (docs/architecture.md, "Where each rule lives").

A page that runs the performance model or draws a chart from rows it has just read can keep
the result under a key made of those inputs: the same inputs give the same result, so a hit is
never stale, and any change in the inputs is a new key. The cache is Django's (per process in
the demo and the tests, Redis where `CACHE_URL` names it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache

T = TypeVar("T")

TIMEOUT_S = 24 * 3600


def content_key(prefix: str, inputs: Any) -> str:
    """`prefix:` and the SHA-256 of `inputs` as canonical JSON (keys sorted; dates, decimals
    and other non-JSON values by their `str`)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return f"{prefix}:{hashlib.sha256(text.encode()).hexdigest()}"


def by_content(prefix: str, inputs: Any, compute: Callable[[], T]) -> T:
    """`compute()`, or what it returned before for the same `inputs`."""
    key = content_key(prefix, inputs)
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, timeout=TIMEOUT_S)
    return found
