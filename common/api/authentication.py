"""`Authorization: Bearer <key>`, the one way the APIs read a key (tenant or monitoring).

A subclass names what its key is (`what`, for the messages), its `realm`, and how a raw key
becomes its principal (`principal`, None when unknown, revoked or expired). No header →
anonymous (the view's permission then answers 401); a malformed or refused key → 401 at once,
or 429 once the client's address has had too many keys refused
(`common.api.throttling.count_refused_key`).
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from common.api.throttling import count_refused_key
from common.keys import MAX_KEY_CHARS


class BearerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"
    what = "key"
    realm = "api"
    refused = "Invalid or revoked key."

    def principal(self, raw: str) -> tuple[Any, Any] | None:
        raise NotImplementedError

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        try:
            return self._authenticate(header)
        except exceptions.AuthenticationFailed:
            count_refused_key(request)
            raise

    def _authenticate(self, header: str) -> tuple[Any, Any]:
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed(f"Use 'Authorization: Bearer <{self.what}>'.")
        raw = parts[1]
        if len(raw) > MAX_KEY_CHARS or not raw.isascii():
            raise exceptions.AuthenticationFailed(f"Invalid {self.what}.")
        found = self.principal(raw)
        if found is None:
            raise exceptions.AuthenticationFailed(self.refused)
        return found

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{self.realm}"'
