"""Bounded, stable pagination for list endpoints.

Cursor pagination: pages stay correct while rows are added, and its cost does not grow with the
page number. `page_size` is capped so no query parameter can make a request unbounded.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


class BoundedCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise exceptions.ValidationError(
                {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            # A bad cursor is bad input, not a missing resource.
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from exc
