"""Cursor pagination of the tenant API: the shared bounded paginator, plus a guard.

DRF trusts the position inside a cursor; a forged cursor (or one from another ordering) would
reach the database as a value of the wrong type and fail there. Any such failure is the
client's bad cursor: 400 with `extra.fields.cursor`, never a 500.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import exceptions

from common.api.pagination import BoundedCursorPagination


class TenantCursorPagination(BoundedCursorPagination):
    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, OverflowError, DjangoValidationError, DataError) as exc:
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from exc
