"""The reclaim workbench: decisions side by side, one decision in depth, planner.

Views read through the selectors and write through the services only; refusals come back as
messages with their code. Reading needs `view_reclaimdecision`; creating `add_`, re-scoring
and rejecting `change_`, and approving (which gives operator notices) `approve_reclaimdecision`.
Queries are bounded: the list is paginated and annotated, the detail
prefetches, the charts are computed from the stored inputs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin, messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.access import operator_page
from common.admin import record_change
from common.exceptions import DomainError

from . import charts, risk, selectors, services
from .forms import DecisionForm, PlanForm
from .models import ReclaimDecision
from .planner import Need

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PAGE_SIZE = 50
VIEW = "reclaim.view_reclaimdecision"
CHANGE = "reclaim.change_reclaimdecision"


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), **extra}


def _operator(request: HttpRequest) -> User:
    """The signed-in staff user who acts (recorded on the decision)."""
    # staff_member_required lets no anonymous request through; the stubs cannot know it.
    return cast("User", request.user)


def _plan(form: PlanForm):
    d = form.cleaned_data
    need = Need(
        gpu_equivalents=d.get("gpu_equivalents") or 0.0,
        reference_accelerator=d["reference"],
        by=d.get("by"),
        site_slug=d["site"].slug if d.get("site") else None,
    )
    return services.plan_for(
        need=need,
        notice_date=d["notice_date"],
        economics={"scarcity_multiplier": d["scarcity"], "reference_accelerator": d["reference"]},
    )


@operator_page(VIEW, write=["reclaim.add_reclaimdecision"])
def decision_list(request: HttpRequest) -> HttpResponse:
    """GET: the decisions, the create form and the planner. POST: create and score one."""
    if request.method == "POST":
        form = DecisionForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                decision = services.decision_create(
                    title=d["title"],
                    lines=form.scope_lines(),
                    notice_date=d["notice_date"],
                    scope_kind=d["scope"],
                    economics={"scarcity_multiplier": d["scarcity"]},
                    actor=_operator(request),
                )
            except DomainError as exc:
                messages.error(request, f"Not created: {exc.message} [{exc.code}] {exc.extra}")
            else:
                messages.success(request, f"Decision “{decision.title}” created and scored.")
                return redirect("operator:reclaim:detail", pk=decision.pk)
    else:
        form = DecisionForm()
    plan_form = PlanForm(request.GET if "plan" in request.GET else None)
    plan = _plan(plan_form) if plan_form.is_bound and plan_form.is_valid() else None
    page = Paginator(selectors.decision_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "operator/reclaim/list.html",
        _context(
            request,
            title="Reclaim decisions",
            page=page,
            form=form,
            plan_form=plan_form,
            plan=plan,
        ),
    )


def _figures(decision: ReclaimDecision) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-part losses and placement charts, and the sensitivity charts, of a scored decision.

    They depend only on the stored inputs and assessment, which change only when the decision
    is re-scored, so they are cached per decision, scoring instant and model version (drawing
    the sweeps of a large decision takes about a second).
    """
    if not (decision.inputs and decision.assessment):
        return [], []
    scored = decision.scored_at.isoformat() if decision.scored_at else ""
    key = f"reclaim-figures/2:{decision.pk}:{scored}:{decision.model_version}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    parts = [
        {
            "index": i,
            "inputs": part,
            "assessment": assessment,
            "losses": charts.losses(assessment),
            "placements_chart": charts.placements_chart(assessment),
        }
        for i, (part, assessment) in enumerate(
            zip(decision.inputs["parts"], decision.assessment["parts"], strict=True)
        )
    ]
    figures = (parts, charts.sensitivity_charts(decision.inputs))
    cache.set(key, figures, timeout=24 * 3600)
    return figures


def _tornado(decision: ReclaimDecision) -> str:
    """The stored uncertainty's tornado as SVG ("" before the first scoring), cached like the
    other figures (per decision, scoring instant and model version)."""
    if not decision.uncertainty:
        return ""
    scored = decision.scored_at.isoformat() if decision.scored_at else ""
    schema = decision.uncertainty.get("schema", "")  # the bars are named as the schema drew them
    key = f"reclaim-tornado:{schema}:{decision.pk}:{scored}:{decision.model_version}"
    svg = cache.get(key)
    if svg is None:
        svg = charts.tornado_chart(decision.uncertainty)
        cache.set(key, svg, timeout=24 * 3600)
    return str(svg)


def _approval_effects(decision: ReclaimDecision) -> list[risk.NoticeEffect]:
    """What approving would change, line by line (empty: approving would change nothing)."""
    notices = services.planned_notices(decision) if decision.notice_date else []
    return risk.approval_effects(notices, decision.notice_date) if notices else []


@operator_page(VIEW)
def decision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One decision: money, loss breakdown, placements, sensitivities, approve / reject."""
    try:
        decision = selectors.decision_get(pk)
    except ReclaimDecision.DoesNotExist:
        raise Http404("No such decision.") from None
    parts, sensitivity = _figures(decision)
    # Every flip of each part in words, its links named by their campuses (one query).
    links = [
        link for part in parts for link in part["assessment"]["break_even"].get("per_link", [])
    ]
    names = selectors.site_names(x for link in links for x in (link["a"], link["b"]))
    parts = [
        {**part, "flips": charts.flip_rows(part["assessment"]["break_even"], names)}
        for part in parts
    ]
    lines = list(decision.lines.all())
    can_decide = decision.status in selectors.OPEN_DECISIONS
    return render(
        request,
        "operator/reclaim/detail.html",
        _context(
            request,
            title=decision.title,
            decision=decision,
            lines=lines,
            parts=parts,
            sensitivity=sensitivity,
            uncertainty=(
                charts.uncertainty_view(decision.uncertainty) if decision.uncertainty else None
            ),
            tornado=_tornado(decision),
            notices=list(decision.notices.all()),
            can_decide=can_decide,
            # Approving is offered only where its notices would change something.
            approval_has_effect=can_decide and bool(_approval_effects(decision)),
        ),
    )


def _act(request: HttpRequest, pk: int, label: str, call) -> HttpResponse:
    try:
        decision = ReclaimDecision.objects.get(pk=pk)
    except ReclaimDecision.DoesNotExist:
        raise Http404("No such decision.") from None
    try:
        decision = call(decision)
    except DomainError as exc:
        messages.error(request, f"{label} refused: {exc.message} [{exc.code}]")
    else:
        record_change(request.user, [decision], label)
        messages.success(
            request, f"{label}: “{decision.title}” is now {decision.get_status_display()}."
        )
    return redirect(reverse("operator:reclaim:detail", kwargs={"pk": pk}))


@operator_page(VIEW, write=["reclaim.approve_reclaimdecision"])
def decision_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what approving would do — the notices, the dates, the rent forgone, the credit notes
    that follow and who is told. POST with `confirm`: approve. Nothing is offered when the
    notices would change nothing."""
    if request.method == "POST" and request.POST.get("confirm"):
        return _act(
            request,
            pk,
            "Approved",
            lambda d: services.decision_approve(decision=d, actor=_operator(request)),
        )
    try:
        decision = selectors.decision_get(pk)
    except ReclaimDecision.DoesNotExist:
        raise Http404("No such decision.") from None
    if request.method == "POST":  # an approval not confirmed: show what it would do
        return redirect(reverse("operator:reclaim:approve", kwargs={"pk": pk}))
    effects = _approval_effects(decision)
    return render(
        request,
        "operator/reclaim/approve.html",
        _context(
            request,
            title=f"Approve “{decision.title}”?",
            decision=decision,
            effects=effects,
            rent_forgone=sum((e.rent_forgone for e in effects), Decimal(0)),
            credits=sum((e.credit for e in effects), Decimal(0)),
            tenants=sorted({e.facts.tenant for e in effects}),
            leases=sorted({e.facts.lease_number for e in effects}),
            can_approve=bool(effects)
            and decision.status in selectors.OPEN_DECISIONS
            and request.user.has_perm("reclaim.approve_reclaimdecision"),
        ),
    )


@operator_page(VIEW, write=[CHANGE])
@require_POST
def decision_reject(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")[:500]
    return _act(
        request,
        pk,
        "Rejected",
        lambda d: services.decision_reject(decision=d, reason=reason, actor=_operator(request)),
    )


@operator_page(VIEW, write=[CHANGE])
@require_POST
def decision_rescore(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "Re-scored", lambda d: services.decision_score(decision=d))
