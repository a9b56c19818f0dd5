"""Revenue at risk: pick a scope and a date D, see what taking it back on D costs and brings
(reclaim/risk.py), and open a reclaim decision prefilled with that scope and notice date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from clusters.models import AcceleratorModel, Cluster, Site
from common.access import operator_page
from common.pages import render_operator
from leasing.models import Tenant
from reclaim import risk

KINDS = [(kind, label.capitalize()) for kind, (label, _) in risk.SCOPES.items()]


class RiskForm(forms.Form):
    kind = forms.ChoiceField(choices=KINDS, label="Scope")
    site = forms.ModelChoiceField(Site.objects.order_by("name"), required=False, label="campus")
    cluster = forms.ModelChoiceField(
        Cluster.objects.select_related("site").order_by("site__name", "name"), required=False
    )
    model = forms.ModelChoiceField(
        AcceleratorModel.objects.order_by("name"), required=False, label="GPU model"
    )
    tenant = forms.ModelChoiceField(Tenant.objects.order_by("name"), required=False)
    on = forms.DateField(
        label="Wanted back on (date D)", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind and not data.get(kind):
            self.add_error(kind, "Choose one for this scope.")
        return data

    def scope(self) -> tuple[str, str, Any]:
        """(kind, the slug the report filters on, the chosen object)."""
        kind = self.cleaned_data["kind"]
        chosen = self.cleaned_data[kind]
        return kind, chosen.slug, chosen


def _decision_fields(kind: str, chosen: Any, report: risk.RiskReport) -> dict[str, Any]:
    """The workbench's create form, prefilled: a campus or cluster scope as such, a GPU model
    or tenant as its lines; the earliest notice date the lines need."""
    fields: dict[str, Any] = {
        "title": f"Take back {report.scope} by {report.on:%Y-%m-%d}",
        "notice_date": f"{report.notice_date:%Y-%m-%d}" if report.notice_date else "",
        "scarcity": "1.0",
    }
    if kind in ("site", "cluster"):
        fields.update(scope=kind, **{kind: chosen.pk})
    else:
        fields.update(scope="lines", lines=[r.facts.line_id for r in report.to_take])
    return fields


@operator_page("leasing.view_lease", "clusters.view_cluster")
def revenue_at_risk(request: HttpRequest) -> HttpResponse:
    form = RiskForm(request.GET if "kind" in request.GET else None)
    report = None
    decision: dict[str, Any] | None = None
    if form.is_bound and form.is_valid():
        kind, slug, chosen = form.scope()
        today = timezone.now().astimezone(dt.UTC).date()
        report = risk.revenue_at_risk(
            kind=kind, value=slug, on=form.cleaned_data["on"], today=today
        )
        if report.to_take and request.user.has_perm("reclaim.add_reclaimdecision"):
            decision = _decision_fields(kind, chosen, report)
    return render_operator(
        request,
        "operator/risk.html",
        {"title": "Revenue at risk", "form": form, "report": report, "decision": decision},
    )
