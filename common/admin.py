"""Admin helpers shared by the apps: actions that call services row by row, history tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from .exceptions import DomainError


def run_per_row(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    label: str,
    call: Callable[[Any], Any],
) -> None:
    """Call a service for each selected row, in primary-key order; each call is its own
    transaction (services are atomic), so one refusal does not undo the others. One success
    message names the rows done (as the service returned them: an issued invoice shows its new
    number), one error message per refusal gives its reason and code."""
    done, refused = [], []
    for obj in queryset.order_by("pk"):
        try:
            result = call(obj)
        except DomainError as exc:
            refused.append(f"{obj}: {exc.message} [{exc.code}]")
        else:
            done.append(str(result if result is not None else obj))
    if done:
        modeladmin.message_user(request, f"{label}: {', '.join(done)}.", messages.SUCCESS)
    for failure in refused:
        modeladmin.message_user(request, f"{label} refused — {failure}", messages.ERROR)


def per_row_action(
    description: str, label: str, call: Callable[[Any, Any], Any]
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], None]:
    """An admin action that runs `call(row, user)` on each selected row (`run_per_row`)."""

    @admin.action(description=description)
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        run_per_row(modeladmin, request, queryset, label, lambda obj: call(obj, request.user))

    return action


def action_form_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    template: str,
    form: Any,
    **extra: Any,
) -> TemplateResponse:
    """The intermediate page of a two-step action (a template extending
    `admin/action_form.html`): the form, posted back with the selected rows and the action's
    name, and whatever else the template shows (`extra`)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "form": form,
        "queryset": queryset,
        "action": action,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        **extra,
    }
    return TemplateResponse(request, template, context)


HistoryRow = tuple[dt.datetime | None, str, str]


def history_table(rows: Iterable[HistoryRow]) -> str:
    """A read-only table of (when, what, detail) rows in time order, for a change page; rows
    without a time are left out."""
    dated = sorted((r for r in rows if r[0] is not None), key=lambda r: r[0])
    if not dated:
        return "—"
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((f"{when:%Y-%m-%d %H:%M} UTC", what, detail) for when, what, detail in dated),
    )
    return format_html(
        "<table><thead><tr><th>When</th><th>What</th><th>Detail</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        body,
    )
