"""Admin helpers shared by the apps: actions that call services row by row, who did them,
history tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .exceptions import DomainError


def record_change(user: Any, objects: Iterable[Model], message: str) -> None:
    """Record who changed what through an operator action: one admin log entry per object,
    shown on its change page's History and in the admin's recent actions. Every operator
    write goes through here, whether or not its service keeps a trail of its own (lease
    events, `decided_by`); bulk inserted, one query."""
    objects = list(objects)
    if objects:
        LogEntry.objects.log_actions(
            user_id=user.pk, queryset=objects, action_flag=CHANGE, change_message=message
        )


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
    number), one error message per refusal gives its reason and code. The rows done are
    recorded as changed by the user (`record_change`)."""
    done, refused, changed = [], [], []
    for obj in queryset.order_by("pk"):
        try:
            result = call(obj)
        except DomainError as exc:
            refused.append(f"{obj}: {exc.message} [{exc.code}]")
        else:
            done.append(str(result if result is not None else obj))
            changed.append(obj)
    record_change(request.user, changed, label)
    if done:
        modeladmin.message_user(request, f"{label}: {', '.join(done)}.", messages.SUCCESS)
    for failure in refused:
        modeladmin.message_user(request, f"{label} refused — {failure}", messages.ERROR)


def per_row_action(
    description: str,
    label: str,
    call: Callable[[Any, Any], Any],
    *,
    permissions: Sequence[str],
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], None]:
    """An admin action that runs `call(row, user)` on each selected row (`run_per_row`).

    `permissions` is required: an action without `allowed_permissions` is offered to anyone who
    may merely view the changelist. Each name `p` is checked by the admin's
    `has_<p>_permission(request)` ("change", or a custom one such as "approve"); the admin
    offers the action if *any* of them holds."""

    @admin.action(description=description, permissions=permissions)
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        run_per_row(modeladmin, request, queryset, label, lambda obj: call(obj, request.user))

    return action


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
