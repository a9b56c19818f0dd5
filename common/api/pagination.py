"""Bounded, stable pagination for list endpoints.

Keyset (cursor) pages over the requested field and `id`: pages stay correct while rows are
added, every row comes exactly once forwards and backwards even where many rows share the
ordered value, and the cost does not grow with the page number. `page_size` is capped so no
query parameter can make a request unbounded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination, _reverse_ordering

MAX_ID_DIGITS = 19  # bigint


class BoundedCursorPagination(CursorPagination):
    """DRF's cursor with a position that is the last row's (ordered value, id), not the value
    alone plus an offset into the rows that share it: with ties, DRF's offsets skip or repeat
    rows when walking back (and forwards, unless ties come back in the same order)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"

    def get_page_size(self, request):
        """A whole number from 1; more than the maximum gives the maximum."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else ""
        if not digits:
            raise exceptions.ValidationError(
                {"page_size": [f"A whole number from 1 (at most {self.max_page_size} are given)."]}
            )
        # More digits than the maximum has is the maximum (and int() of thousands raises).
        if len(digits) > len(str(self.max_page_size)):
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The `next` or `previous` link's cursor (opaque).",
                "schema": {"type": "string", "minLength": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {self.page_size}; more than "
                f"{self.max_page_size} gives {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]

    def get_ordering(self, request, queryset, view):
        """The first requested field, then `id` in the same direction (ties broken by id)."""
        first = super().get_ordering(request, queryset, view)[0]
        descending = first.startswith("-")
        tie = "-id" if descending else "id"
        if first.lstrip("-") in ("id", "pk"):
            return (tie,)
        return (first, tie)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            # A bad cursor is bad input, not a missing resource.
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from exc

    # --- keyset ---------------------------------------------------------------------------

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        reverse = bool(self.cursor and self.cursor.reverse)
        self.key = None
        if self.cursor is not None and self.cursor.position is not None:
            self.key = self._decode_key(self.cursor.position, queryset.model)
        order = _reverse_ordering(self.ordering) if reverse else self.ordering
        queryset = queryset.order_by(*order)
        if self.key is not None:
            queryset = queryset.filter(self._after(order, self.key))
        results = list(queryset[: self.page_size + 1])
        more = len(results) > self.page_size
        self.page = results[: self.page_size]
        if reverse:
            self.page.reverse()
            self.has_previous, self.has_next = more, self.key is not None
        else:
            self.has_next, self.has_previous = more, self.key is not None
        return self.page

    def get_next_link(self):
        if not self.has_next:
            return None
        key = self._key(self.page[-1]) if self.page else self.key
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=self._encode(key)))

    def get_previous_link(self):
        if not self.has_previous:
            return None
        key = self._key(self.page[0]) if self.page else self.key
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=self._encode(key)))

    def _key(self, row: Any) -> tuple:
        """(ordered value, id) of a row (a model or a `.values()` dict), or (id,)."""
        names = [field.lstrip("-") for field in self.ordering]
        if isinstance(row, dict):
            return tuple(row[name] for name in names)
        return tuple(getattr(row, name) for name in names)

    def _encode(self, key: tuple) -> str:
        *value, pk = key
        if not value:
            return str(pk)
        raw = value[0].isoformat() if isinstance(value[0], dt.date) else str(value[0])
        return f"{raw}|{pk}"

    def _decode_key(self, position: str, model) -> tuple:
        """The key of a cursor's position, the value parsed by its model field; anything
        malformed (or a naive instant) is a bad cursor (400)."""
        invalid = exceptions.ValidationError({"cursor": ["Invalid cursor."]})
        raw, sep, pk = position.rpartition("|")
        if (len(self.ordering) == 2) != bool(sep):
            raise invalid
        if not (pk.isascii() and pk.isdigit() and len(pk) <= MAX_ID_DIGITS):
            raise invalid
        if not sep:
            return (int(pk),)
        try:
            value = model._meta.get_field(self.ordering[0].lstrip("-")).to_python(raw)
        except DjangoValidationError as exc:
            raise invalid from exc
        if value is None or (isinstance(value, dt.datetime) and value.tzinfo is None):
            raise invalid
        return (value, int(pk))

    @staticmethod
    def _after(order: tuple, key: tuple) -> Q:
        """Rows strictly after `key` in `order` (the value's field, then id, one direction)."""
        op = "lt" if order[-1].startswith("-") else "gt"
        *value, pk = key
        if not value:
            return Q(**{f"id__{op}": pk})
        field = order[0].lstrip("-")
        return Q(**{f"{field}__{op}": value[0]}) | Q(**{field: value[0], f"id__{op}": pk})
