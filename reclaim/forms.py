"""Workbench forms: create a decision, ask the planner. Input only; rules live in services."""

from __future__ import annotations

import datetime as dt
from typing import cast

from django import forms
from django.utils import timezone

from clusters import perfmodel
from clusters.models import Cluster, Site
from leasing.models import Lease, LeaseLine

from . import selectors

SCOPES = [
    ("lease", "a whole lease"),
    ("lines", "some lease lines"),
    ("cluster", "everything leased on a cluster"),
    ("site", "everything leased on a campus"),
]


class LineChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: LeaseLine) -> str:
        return obj.label


class LeaseChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Lease) -> str:
        return f"{obj.number} · {obj.tenant.name} ({obj.get_status_display()})"


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _choice(form: forms.Form, name: str) -> forms.ModelChoiceField:
    """The form's own copy of a declared model-choice field, to narrow its queryset."""
    # `form.fields` is typed by name only; the class body above declares which kind each is.
    return cast(forms.ModelChoiceField, form.fields[name])


class DecisionForm(forms.Form):
    """What to evaluate: a scope, a notice date and the scarcity of compute."""

    title = forms.CharField(max_length=200)
    scope = forms.ChoiceField(choices=SCOPES, initial="lease")
    lease = LeaseChoiceField(queryset=Lease.objects.none(), required=False)
    lines = LineChoiceField(queryset=LeaseLine.objects.none(), required=False)
    cluster = forms.ModelChoiceField(queryset=Cluster.objects.none(), required=False)
    site = forms.ModelChoiceField(queryset=Site.objects.none(), required=False)
    notice_date = forms.DateField(initial=_today, widget=forms.DateInput(attrs={"type": "date"}))
    scarcity = forms.FloatField(min_value=0.0, initial=1.0, label="Scarcity multiplier")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "lease").queryset = selectors.signed_leases()
        _choice(self, "lines").queryset = (
            selectors.reclaimable_lines()
            .select_related("lease__tenant", "cluster")
            .order_by("lease__number", "pk")
        )
        _choice(self, "cluster").queryset = Cluster.objects.select_related("site").order_by("slug")
        _choice(self, "site").queryset = Site.objects.order_by("slug")

    def clean(self):
        data = super().clean()
        needed = {"lease": "lease", "lines": "lines", "cluster": "cluster", "site": "site"}
        field = needed.get(data.get("scope", ""))
        if field and not data.get(field):
            self.add_error(field, "Required for this scope.")
        return data

    def scope_lines(self) -> list[LeaseLine]:
        d = self.cleaned_data
        kind = d["scope"]
        return selectors.scope_lines(
            kind=kind,
            lease_id=d["lease"].pk if d.get("lease") else None,
            line_ids=[line.pk for line in d.get("lines") or ()],
            cluster_id=d["cluster"].pk if d.get("cluster") else None,
            site_slug=d["site"].slug if d.get("site") else None,
        )


class PlanForm(forms.Form):
    """A need: N GPU-equivalents from a date, or the best use of a campus."""

    plan = forms.CharField(widget=forms.HiddenInput, initial="1")
    gpu_equivalents = forms.FloatField(
        min_value=0.0, initial=0.0, required=False, label="GPU-equivalents needed (0: none)"
    )
    reference = forms.ChoiceField(
        choices=[(k, k) for k in perfmodel.CATALOG], initial="H100", label="of"
    )
    by = forms.DateField(
        required=False, label="from (date D)", widget=forms.DateInput(attrs={"type": "date"})
    )
    site = forms.ModelChoiceField(
        queryset=Site.objects.none(), required=False, label="only on campus"
    )
    notice_date = forms.DateField(initial=_today, widget=forms.DateInput(attrs={"type": "date"}))
    scarcity = forms.FloatField(min_value=0.0, initial=1.0, label="Scarcity multiplier")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "site").queryset = Site.objects.order_by("slug")
