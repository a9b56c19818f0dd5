"""`?ordering=` that refuses what it cannot do.

DRF's `OrderingFilter` drops fields it does not expose and falls back to the default order, so
`?ordering=tenant` or `?ordering=garbage` silently answers in another order than asked. Here the
value must be one exposed field, optionally prefixed with `-`; anything else is a 400 naming
`ordering`. One field only: the cursor pages by it, then by id.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.filters import OrderingFilter


class StrictOrderingFilter(OrderingFilter):
    def choices(self, view) -> list[str]:
        fields = getattr(view, "ordering_fields", None) or []
        assert "__all__" not in fields, "expose ordering fields by name"
        return [term for name in fields for term in (name, f"-{name}")]

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw is None:
            return self.get_default_ordering(view)
        choices = self.choices(view)
        if raw not in choices:
            raise exceptions.ValidationError(
                {self.ordering_param: [f"Use one of: {', '.join(choices)}."]}
            )
        return [raw]

    def get_schema_operation_parameters(self, view):
        choices = self.choices(view)
        if not choices:
            return []
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Order by one field (`-` for descending); ties by id.",
                "schema": {"type": "string", "enum": choices},
            }
        ]
