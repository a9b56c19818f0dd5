"""Query strings of the API: only the parameters an operation takes, each given at most as
often as it may be, none empty. Anything else is a 400 `validation_error` naming the parameter.

Django and DRF are lenient here in ways that hide client bugs: an unknown or misspelt filter is
ignored (the client gets every row), a repeated single-valued parameter silently keeps its last
value, an empty one filters nothing. The API refuses all three, in one place
(`check_query`, run by every tenant view before it reads its parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import django_filters
from django.http import QueryDict
from rest_framework import exceptions


@dataclass(frozen=True)
class QuerySpec:
    """The query parameters an operation takes, and which of them may be repeated."""

    names: frozenset[str] = field(default_factory=frozenset)
    repeatable: frozenset[str] = field(default_factory=frozenset)


def check_query(query: QueryDict, spec: QuerySpec) -> None:
    """Refuse unknown, repeated single-valued and empty parameters (all named at once)."""
    errors: dict[str, list[str]] = {}
    for name in query:
        values = query.getlist(name)
        if name not in spec.names:
            errors[name] = ["Unknown query parameter."]
        elif len(values) > 1 and name not in spec.repeatable:
            errors[name] = ["Give this parameter at most once."]
        elif any(value == "" for value in values):
            errors[name] = ["Must not be empty."]
    if errors:
        raise exceptions.ValidationError(errors)


def filterset_spec(filterset_class: type[django_filters.FilterSet] | None) -> QuerySpec:
    """A FilterSet's parameters; multiple-choice filters may be repeated."""
    if filterset_class is None:
        return QuerySpec()
    filters = filterset_class.base_filters
    return QuerySpec(
        frozenset(filters),
        frozenset(
            name
            for name, f in filters.items()
            if isinstance(f, django_filters.MultipleChoiceFilter)
        ),
    )


def list_spec(view) -> QuerySpec:
    """What a list view takes: its FilterSet's filters, `ordering` where it orders, and its
    paginator's parameters."""
    spec = filterset_spec(getattr(view, "filterset_class", None))
    names = set(spec.names)
    for backend in view.filter_backends:
        param = getattr(backend, "ordering_param", None)
        if param and getattr(view, "ordering_fields", None):
            names.add(param)
    paginator = view.paginator
    for attr in ("cursor_query_param", "page_size_query_param"):
        param = getattr(paginator, attr, None)
        if param:
            names.add(param)
    return QuerySpec(frozenset(names), spec.repeatable)
