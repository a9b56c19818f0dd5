"""Admin helpers shared by the apps: actions that call services row by row, who did them,
history tables; and the operators' view of domain events and their deliveries (`common.events`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import events
from .display import EMPTY
from .exceptions import DomainError
from .models import DomainEvent, EventDelivery, EventDeliveryStatus, OperatorKey
from .money import DEFAULT_CURRENCY, format_money
from .operator_keys import operator_key_create, operator_key_revoke


class ReadOnlyAdmin(admin.ModelAdmin):
    """A model only services write (documents, trails, records): the admin lists and shows
    its rows and runs its actions, and never adds, edits or deletes one by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent, read-only (see `ReadOnlyAdmin`)."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def unit_label(text: str, unit: str) -> str:
    """A column title ending in its unit, e.g. ``one-way latency (µs)``, whose unit keeps its
    case: the admin writes column titles in capitals, and a capital µ reads as M (milli).
    The ``unit`` class is styled in templates/admin/base_site.html."""
    return format_html('{} (<span class="unit">{}</span>)', text, unit)


def money_display(
    field: str,
    description: str,
    *,
    currency: Callable[[Any], str] | None = attrgetter("currency"),
) -> Callable[[Any, Any], str]:
    """An admin column or read-only field showing the money in `field` the one way money is
    shown (`common.money.format_money`: symbol, thousands separators, cents), in the currency
    `currency(row)` gives (the default currency if None). Assign it on a ModelAdmin or an
    inline and name it in `list_display`, `fields` and `readonly_fields`."""

    @admin.display(description=description, ordering=field)
    def show(_admin: Any, obj: Any) -> str:
        value = getattr(obj, field)
        if value is None:
            return EMPTY
        return format_money(value, currency(obj) if currency else DEFAULT_CURRENCY)

    return show


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
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        **extra,
    }
    return TemplateResponse(request, template, context)


HistoryRow = tuple[dt.datetime | None, str, str]


def history_table(rows: Iterable[HistoryRow]) -> str:
    """A read-only table of (when, what, detail) rows in time order, for a change page; rows
    without a time are left out."""
    dated = sorted(
        ((when, what, detail) for when, what, detail in rows if when is not None),
        key=lambda r: r[0],
    )
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


# --- domain events: what operators watch (common.events) -----------------------------------------


class DeliveryStateFilter(admin.SimpleListFilter):
    """The deliveries that need an eye: failed, retrying after an error, or stuck (never
    consumed although their dispatch is long overdue: no worker, or no sweep running)."""

    title = "attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [
            ("failed", "Failed (gave up)"),
            ("retrying", "Retrying after an error"),
            ("stuck", f"Stuck (not consumed after {events.DISPATCH_GRACE})"),
        ]

    def queryset(self, request, queryset):
        pending = queryset.filter(status=EventDeliveryStatus.PENDING)
        if self.value() == "failed":
            return queryset.filter(status=EventDeliveryStatus.FAILED)
        if self.value() == "retrying":
            return pending.filter(attempts__gt=0)
        if self.value() == "stuck":
            overdue = timezone.now() - events.DISPATCH_GRACE
            return pending.filter(attempts=0, event__created_at__lt=overdue)
        return queryset


class EventDeliveryInline(admin.TabularInline):
    model = EventDelivery
    extra = 0
    can_delete = False
    fields = ["consumer", "status", "attempts", "next_attempt_at", "done_at", "last_error"]
    readonly_fields = cast(list[str], fields)  # names only (the stubs type `fields` wider)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(admin.ModelAdmin):
    """Events as written by the services that made the changes, with their deliveries."""

    list_display = ["id", "kind", "subject", "subject_id", "occurred_at", "created_at"]
    list_filter = ["kind", "subject"]
    search_fields = ["=subject_id", "kind"]
    inlines = [EventDeliveryInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in DomainEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EventDelivery)
class EventDeliveryAdmin(admin.ModelAdmin):
    """Each event to each consumer: what ran, what failed and why; retry records who."""

    list_display = [
        "id",
        "consumer",
        "kind",
        "subject",
        "status",
        "attempts",
        "error",
        "next_attempt_at",
        "done_at",
        "retried_by",
        "retried_at",
    ]
    list_filter = [DeliveryStateFilter, "status", "consumer", "event__kind"]
    search_fields = ["=event__subject_id", "consumer", "last_error"]
    list_select_related = ["event", "retried_by"]
    actions = ["retry"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in EventDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="kind", ordering="event__kind")
    def kind(self, obj: EventDelivery) -> str:
        return obj.event.kind

    @admin.display(description="subject")
    def subject(self, obj: EventDelivery) -> str:
        return f"{obj.event.subject} {obj.event.subject_id}"

    @admin.display(description="last error")
    def error(self, obj: EventDelivery) -> str:
        lines = obj.last_error.strip().splitlines()
        return lines[-1][:120] if lines else ""

    retry = per_row_action(
        "Retry now (records who)",
        "Dispatched again",
        lambda obj, user: events.delivery_retry(delivery=obj, actor=user),
        permissions=["change"],
    )


class OperatorKeyForm(forms.ModelForm):
    class Meta:
        model = OperatorKey
        fields = ["user", "name", "expires_at"]

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return value


class StoredKeyAdmin(admin.ModelAdmin):
    """A bearer key's admin (`common.models.StoredKey`): created by its service, the raw key
    shown once in a message; never edited (revoke it and create another); the hash never
    shown. Subclasses name the `owner` field and the services that create and revoke."""

    owner = ""
    key_label = "key"
    readonly_fields = ["prefix", "created_at", "created_by", "revoked_at", "last_used_at"]
    actions = ["revoke"]

    def create_key(self, request: HttpRequest, obj: Any) -> tuple[Any, str]:
        raise NotImplementedError

    def revoke_key(self, request: HttpRequest, key: Any) -> None:
        raise NotImplementedError

    def get_fields(self, request, obj=None):
        entered = [self.owner, "name", "expires_at"]
        return entered if obj is None else [*entered, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [self.owner, "name", "expires_at", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change:
            return  # keys are immutable; revoke and create another instead
        key, raw = self.create_key(request, obj)
        obj.pk = key.pk
        obj.__dict__.update({f.attname: getattr(key, f.attname) for f in key._meta.fields})
        self.show_once(request, key, raw)

    def show_once(self, request: HttpRequest, key: Any, raw: str) -> None:
        self.message_user(
            request,
            f"New {self.key_label} for {getattr(key, self.owner)}: {raw} — copy it now, it is "
            "not stored and will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            self.revoke_key(request, key)
        record_change(request.user, queryset, "Revoked")
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(OperatorKey)
class OperatorKeyAdmin(StoredKeyAdmin):
    """Operator API keys: created here for a staff user (the raw key is shown once, in a
    message) and revoked; nothing else about a key can be edited. No group holds
    `add_operatorkey`: a key acts as its user, so only superusers create them
    (docs/rules/roles.md)."""

    form = OperatorKeyForm
    list_display = ["prefix", "user", "name", "created_at", "expires_at", "revoked_at"]
    list_filter = ["user"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    owner = "user"
    key_label = "operator key"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create_key(self, request, obj):
        return operator_key_create(
            user=obj.user, name=obj.name, expires_at=obj.expires_at, actor=request.user
        )

    def revoke_key(self, request, key):
        operator_key_revoke(key=key)
