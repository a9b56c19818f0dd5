"""Reclaim decision services: create, score, approve, reject, executed, nightly re-score.

Keyword-only, atomic, `now=` and `actor=` like every leasing service. A decision's state moves
DRAFT → SCORED → APPROVED → NOTICE_ISSUED → EXECUTED, or to REJECTED (docs/rules/lease.md,
"States").

Scoring follows `planner.py` (windows from the notice rules, exact rent forgone, one model
scenario per window). The stored `inputs` (one scenario document per part), `model_version` and
`assessment` (each part's assessment document, plus the totals) are exactly what the model was
given and returned, so `perfmodel.assess` on a stored scenario reproduces the stored part.

Approval issues the operator notices through `leasing.notices.notice_give` — never around it —
one per lease with a non-empty window (the whole lease if every open line of it is in the set,
else those lines), with `requested_end` = the effective end the decision was scored with, so
the notices end the capacity exactly when the decision said. APPROVED is transient: approval
and the notices are one transaction, which commits NOTICE_ISSUED (or nothing). The decision row
is locked first and its state re-checked after the lock, so approving twice, even concurrently,
issues the notices once; the second call is refused.

Lock order: the decision row, then (inside `notice_give`) the lease rows, in the order of the
leasing services. Nothing locks a lease and then a decision.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

from django.db import transaction

from billing import proration
from clusters import perfmodel
from clusters.models import Cluster
from clusters.perfmodel.scenario import check_bounds
from clusters.perfmodel.uncertainty import decide
from clusters.services import DEFAULT_ECONOMICS, scenario_document
from common.clock import resolve_now as _now
from common.contract_time import local_date
from common.db import lock_row
from leasing import notices as leasing_notices
from leasing.choices import UNRELEASED, LeaseStatus, LineStatus, Party
from leasing.exceptions import Conflict, DomainError, InvalidInput, NotFound, TransitionNotAllowed
from leasing.models import Lease, LeaseLine

from . import planner, selectors
from .choices import ReclaimStatus
from .models import ReclaimDecision

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# The reason tenants read on a reclaim notice (API, tenant views). A decision's id and title are
# internal; the decision links to its notices (`ReclaimDecision.notices`) for operators.
TENANT_NOTICE_REASON = "Operator notice: capacity reclaimed for the operator's own use."


class ReclaimStale(Conflict):
    """The leases changed since scoring, or the notice date has passed: re-score first."""

    code = "reclaim_stale"
    default_message = "The decision is out of date; re-score it before approving."


class NothingToReclaim(Conflict):
    """Every candidate line's window is empty (the notice would be moot): no notice to give."""

    code = "reclaim_nothing"
    default_message = "A notice on this date would be moot for every line: nothing to reclaim."


def _lock(decision: ReclaimDecision | int) -> ReclaimDecision:
    """Lock the decision row and return a fresh copy (state re-read after the lock)."""
    try:
        return lock_row(
            ReclaimDecision, decision.pk if isinstance(decision, ReclaimDecision) else decision
        )
    except ReclaimDecision.DoesNotExist:
        raise NotFound("The decision no longer exists.") from None


def _scored(document: Any | None) -> Any:
    """A stored `inputs` or `assessment` document of a decision that has been scored."""
    # Null only before the first scoring; callers hold a decision past it (its status says so),
    # which the nullable column's type cannot express.
    return cast(Any, document)


def _check_overrides(workload: dict[str, Any], economics: dict[str, Any]) -> None:
    bad = sorted(set(economics) - set(planner.ECONOMICS_OVERRIDES))
    if bad:
        raise InvalidInput(
            "Horizon and rent come from the window and the leases; they cannot be overridden.",
            extra={"fields": {"economics": f"unknown or fixed fields: {', '.join(bad)}"}},
        )
    if not isinstance(workload, dict):
        raise InvalidInput(extra={"fields": {"workload": "Must be an object."}})
    # Bounded before anything is written: depth, size, finite and representable numbers.
    for name, value in (("workload", workload), ("economics", economics)):
        try:
            check_bounds(value, f"$.{name}")
        except perfmodel.ScenarioError as exc:
            raise InvalidInput(
                f"The {name} is invalid: {exc}", extra={"fields": {name: exc.message}}
            ) from exc


@transaction.atomic
def decision_create(
    *,
    title: str,
    lines: Sequence[LeaseLine],
    notice_date: dt.date,
    scope_kind: str = "lines",
    workload: dict[str, Any] | None = None,
    economics: dict[str, Any] | None = None,
    reason: str = "",
    score: bool = True,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> ReclaimDecision:
    """Create a decision over `lines` (open lines of signed leases) and score it (default).

    `economics` may override scarcity and the reference only (horizon and rent follow from the
    window); `workload` overrides fields of the default internal workload.
    """
    now = _now(now)
    workload, economics = dict(workload or {}), dict(economics or {})
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = "Required."
    if scope_kind not in selectors.SCOPE_KINDS:
        errors["scope_kind"] = f"One of {', '.join(selectors.SCOPE_KINDS)}."
    ids = sorted({line.pk for line in lines})
    if not ids:
        errors["lines"] = "Choose at least one open lease line."
    elif selectors.reclaimable_lines().filter(pk__in=ids).count() != len(ids):
        errors["lines"] = "Every line must be an open line of a signed lease."
    if errors:
        raise InvalidInput(extra={"fields": errors})
    _check_overrides(workload, economics)
    decision = ReclaimDecision.objects.create(
        title=title.strip()[:200],
        scope_kind=scope_kind,
        notice_date=notice_date,
        workload=workload,
        economics=economics,
        reason=reason[:500],
        created_by=actor,
    )
    decision.lines.set(ids)
    if score:
        decision = decision_score(decision=decision, now=now)
    return decision


def _score_parts(
    decision: ReclaimDecision, facts: list[planner.LineFacts], notice_date: dt.date
) -> tuple[list[dict[str, Any]], list[planner.Part]]:
    """One scenario and one assessment per part (lines sharing a window)."""
    windows = [planner.line_window(f, notice_date) for f in facts]
    parts = planner.group_parts(windows)
    out = []
    for part in parts:
        economics = planner.part_economics(part, decision.economics, dict(DEFAULT_ECONOMICS))
        leases = sorted({w.facts.lease_number for w in part.windows})
        document = scenario_document(
            clusters=[Cluster(pk=pk) for pk in part.gpus_by_cluster()],
            leased_gpus=part.gpus_by_cluster(),
            workload=decision.workload,
            economics=economics,
            name=f"{decision.title} — {', '.join(leases)}",
        )
        document = planner.leased_only(document)
        if not document["pools"]:
            raise InvalidInput(
                "None of these lines' nodes are running: there is no capacity to value.",
                extra={"lines": part.line_ids},
            )
        try:
            scenario = perfmodel.Scenario.from_dict(document)
        except perfmodel.ScenarioError as exc:
            raise InvalidInput(
                f"The scenario is invalid: {exc}", extra={"path": getattr(exc, "path", "")}
            ) from exc
        assessment = perfmodel.assess(scenario).to_dict()
        rent = proration.to_money(part.rent_exact) if part.days > 0 else Decimal("0.00")
        monthly = sum((w.facts.monthly_rate for w in part.windows), Decimal(0))
        out.append(
            {
                "window_start": part.start.isoformat(),
                "window_end": part.end.isoformat(),
                "days": part.days,
                "lines": part.line_ids,
                "leases": leases,
                "notice_effective_end": {
                    str(w.facts.lease_id): w.notice_effective_end.isoformat() for w in part.windows
                },
                "rent_forgone_usd": str(rent),
                "monthly_rate_usd": str(monthly),
                "scenario": document,
                "assessment": assessment,
            }
        )
    return out, parts


# Draws of the unknowns per scoring (docs/model.md, "Decisions with uncertainty").
UNCERTAINTY_SAMPLES = 10_000


def decision_uncertainty(parts: list[dict[str, Any]], *, seed: int) -> dict[str, Any]:
    """The decision over the default ranges of the unknowns: every part's stored scenario is
    sampled with the same draws (seeded by the decision) and the nets added draw by draw."""
    scenarios = [perfmodel.Scenario.from_dict(p["scenario"]) for p in parts]
    result = decide(scenarios, samples=UNCERTAINTY_SAMPLES, seed=seed)
    return result.to_dict()


@transaction.atomic
def decision_score(
    *,
    decision: ReclaimDecision,
    notice_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> ReclaimDecision:
    """Score (or re-score) a DRAFT or SCORED decision with today's inventory, rates and prices.

    `notice_date`, if given, replaces the decision's. Stores the inputs, the model version, the
    assessment, the window, value, rent, net and recommendation. A recommendation that differs
    from the previous score is a flip: `previous_recommendation` and `flipped_at` record it.
    """
    now = _now(now)
    decision = _lock(decision)
    if decision.status not in selectors.OPEN_DECISIONS:
        raise TransitionNotAllowed(
            "Only a draft or scored decision can be scored.", extra={"status": decision.status}
        )
    if notice_date is not None:
        decision.notice_date = notice_date
    line_ids = list(decision.lines.values_list("pk", flat=True))
    facts = selectors.line_facts(line_ids)
    if not facts:
        raise InvalidInput(extra={"fields": {"lines": "The decision has no lines."}})
    parts, part_objs = _score_parts(decision, facts, decision.notice_date)
    rent_exact = sum((p.rent_exact for p in part_objs if p.days > 0), start=Fraction(0))
    rent_total = proration.to_money(rent_exact)
    totals = planner.combine(parts, rent_total)
    nonempty = [p for p in part_objs if p.days > 0]
    decision.inputs = {
        "schema": planner.INPUTS_SCHEMA,
        "notice_date": decision.notice_date.isoformat(),
        "parts": [{k: v for k, v in p.items() if k != "assessment"} for p in parts],
    }
    decision.assessment = {
        "schema": planner.ASSESSMENT_SCHEMA,
        **totals,
        "parts": [p["assessment"] for p in parts],
    }
    decision.model_version = perfmodel.MODEL_VERSION
    decision.uncertainty = decision_uncertainty(parts, seed=decision.pk)
    if nonempty:
        decision.window_start = min(p.start for p in nonempty)
        decision.window_end = max(p.end for p in nonempty)
    else:
        decision.window_start = decision.window_end = part_objs[0].start
    decision.internal_value = Decimal(totals["internal_value_usd"])
    decision.rent_forgone = rent_total
    decision.net_value = Decimal(totals["net_usd"])
    new = totals["recommendation"]
    if decision.recommendation and decision.recommendation != new:
        decision.previous_recommendation = decision.recommendation
        decision.flipped_at = now
    decision.recommendation = new
    decision.status = ReclaimStatus.SCORED
    decision.scored_at = now
    decision.save()
    return decision


def planned_notices(decision: ReclaimDecision) -> list[dict[str, Any]]:
    """The notices approval will give: one per lease with a non-empty window.

    Each: lease id, the line ids (or None for the whole lease) and the effective end.
    """
    if not decision.inputs:
        return []
    by_lease: dict[int, dict[str, Any]] = {}
    line_ids = [i for p in decision.inputs["parts"] if p["days"] > 0 for i in p["lines"]]
    facts = {f.line_id: f for f in selectors.line_facts(line_ids)}
    for part in decision.inputs["parts"]:
        if part["days"] <= 0:
            continue
        for line_id in part["lines"]:
            f = facts.get(line_id)
            if f is None:
                continue
            entry = by_lease.setdefault(
                f.lease_id,
                {
                    "lease_id": f.lease_id,
                    "lease_number": f.lease_number,
                    "effective_end": dt.datetime.fromisoformat(
                        part["notice_effective_end"][str(f.lease_id)]
                    ),
                    "tz": f.tz,
                    "line_ids": [],
                    "open_line_ids": f.lease_open_line_ids,
                },
            )
            entry["line_ids"].append(line_id)
    out = []
    for entry in sorted(by_lease.values(), key=lambda e: e["lease_id"]):
        whole = set(entry["open_line_ids"]) <= set(entry["line_ids"])
        out.append({**entry, "lines": None if whole else sorted(entry["line_ids"])})
    return out


def earliest_notice_date(zones: Iterable[str], now: dt.datetime) -> dt.date:
    """The first notice date not yet passed in any of the contract `zones`: the latest local
    "today" among them (a notice is given on its lease's local date). UTC's if none."""
    return max((local_date(now, tz) for tz in set(zones)), default=local_date(now, "UTC"))


def _check_fresh(decision: ReclaimDecision, now: dt.datetime) -> None:
    """Refuse if the notice date has passed or the leases moved since scoring."""
    facts = selectors.line_facts(list(decision.lines.values_list("pk", flat=True)))
    if earliest_notice_date((f.tz for f in facts), now) > decision.notice_date:
        raise ReclaimStale(
            "The notice date has passed; re-score with a new notice date.",
            extra={"notice_date": decision.notice_date.isoformat()},
        )
    windows = [planner.line_window(f, decision.notice_date) for f in facts]
    fresh = sorted(
        (p.start.isoformat(), p.end.isoformat(), sorted(p.line_ids))
        for p in planner.group_parts(windows)
    )
    stored = sorted(
        (p["window_start"], p["window_end"], sorted(p["lines"]))
        for p in _scored(decision.inputs)["parts"]
    )
    if fresh != stored:
        raise ReclaimStale("The leases changed since scoring; re-score before approving.")


@transaction.atomic
def decision_approve(
    *, decision: ReclaimDecision, actor: User | None = None, now: dt.datetime | None = None
) -> ReclaimDecision:
    """SCORED → (APPROVED) → NOTICE_ISSUED: give the operator notices the decision names.

    Refused (nothing written) unless the decision is scored, its notice date has not passed
    (a notice is given on the day of approval, so the scored effective end is honoured only if
    approval comes no later than the notice date), and the leases still give the scored windows.
    Each notice emits `notice.received`, on which billing credits what was invoiced beyond
    the new ends (`billing.consumers`).
    """
    now = _now(now)
    decision = _lock(decision)
    if decision.status != ReclaimStatus.SCORED:
        raise TransitionNotAllowed(
            "Only a scored decision can be approved.", extra={"status": decision.status}
        )
    _check_fresh(decision, now)
    notices = planned_notices(decision)
    if not notices:
        raise NothingToReclaim()
    decision.status = ReclaimStatus.APPROVED
    decision.decided_by = actor
    decision.decided_at = now
    decision.save(update_fields=["status", "decided_by", "decided_at"])
    reason = TENANT_NOTICE_REASON
    issued = []
    for planned in notices:
        lines = (
            None
            if planned["lines"] is None
            else list(LeaseLine.objects.filter(pk__in=planned["lines"]))
        )
        notice = leasing_notices.notice_give(
            lease=Lease(pk=planned["lease_id"]),
            party=Party.OPERATOR,
            lines=lines,
            requested_end=planned["effective_end"],
            reason=reason,
            actor=actor,
            now=now,
        )
        if notice.effective_end != planned["effective_end"]:
            # Cannot happen when the freshness check passed; refuse rather than act on a
            # different date than the one scored.
            raise ReclaimStale(
                "The notice would end on a different date than scored.",
                extra={"lease": planned["lease_number"]},
            )
        issued.append(notice)
    decision.notices.add(*issued)
    logger.info(
        "reclaim decision %s issued notices %s", decision.pk, ", ".join(str(n.pk) for n in issued)
    )
    decision.status = ReclaimStatus.NOTICE_ISSUED
    decision.save(update_fields=["status"])
    return decision


@transaction.atomic
def decision_reject(
    *,
    decision: ReclaimDecision,
    reason: str = "",
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> ReclaimDecision:
    """DRAFT or SCORED → REJECTED. Writes nothing to leases."""
    now = _now(now)
    decision = _lock(decision)
    if decision.status not in selectors.OPEN_DECISIONS:
        raise TransitionNotAllowed(
            "Only a draft or scored decision can be rejected.", extra={"status": decision.status}
        )
    decision.status = ReclaimStatus.REJECTED
    decision.decided_by = actor
    decision.decided_at = now
    if reason:
        decision.reason = reason[:500]
    decision.save(update_fields=["status", "decided_by", "decided_at", "reason"])
    return decision


# A line is back with the operator when it never ran (cancelled), or it ended and either its
# lease runs on (a partial notice: its allocations stopped at the line's end) or the lease's
# nodes were confirmed released.


def _line_back(line: LeaseLine) -> bool:
    lease = line.lease
    if line.status == LineStatus.CANCELLED or lease.status == LeaseStatus.CANCELLED:
        return True
    if line.status != LineStatus.ENDED and lease.status != LeaseStatus.CLOSED:
        return False
    return lease.released_at is not None or lease.status not in UNRELEASED


def decisions_mark_executed(
    *, decision_ids: Iterable[int] | None = None, now: dt.datetime | None = None
) -> int:
    """NOTICE_ISSUED → EXECUTED for decisions whose reclaimed nodes are all back.

    Called on `lease.released` / `line.ended` events (`consumers.py`) and by the nightly job
    (catch-up). Each decision in its own transaction under its lock. Returns how many moved.
    """
    now = _now(now)
    qs = ReclaimDecision.objects.filter(status=ReclaimStatus.NOTICE_ISSUED)
    if decision_ids is not None:
        qs = qs.filter(pk__in=list(decision_ids))
    moved = 0
    for pk in qs.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            decision = _lock(pk)
            if decision.status != ReclaimStatus.NOTICE_ISSUED:
                continue
            wanted = [
                i for p in _scored(decision.inputs)["parts"] if p["days"] > 0 for i in p["lines"]
            ]
            lines = list(LeaseLine.objects.filter(pk__in=wanted).select_related("lease"))
            if lines and all(_line_back(line) for line in lines):
                decision.status = ReclaimStatus.EXECUTED
                decision.executed_at = now
                decision.save(update_fields=["status", "executed_at"])
                moved += 1
    return moved


def decisions_rescore(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The nightly job: re-score every open decision with fresh inventory, rates and prices.

    A notice date already past is moved to the first date not passed in any of the decision's
    lines' contract zones (the date approval checks against; a notice cannot be given in the
    past). Flips are recorded by `decision_score`. Each decision is its own transaction; one
    refusal does not stop the others. Then catches up on executed decisions. Safe to run twice.
    """
    now = _now(now)
    counts = {"scored": 0, "flipped": 0, "refused": 0, "executed": 0}
    for pk in selectors.open_decision_ids():
        try:
            decision = ReclaimDecision.objects.get(pk=pk)
            before = decision.flipped_at
            zones = decision.lines.values_list("lease__contract_timezone", flat=True)
            today = earliest_notice_date(zones, now)
            decision = decision_score(
                decision=decision, notice_date=max(decision.notice_date, today), now=now
            )
        except (DomainError, ReclaimDecision.DoesNotExist) as exc:
            logger.warning("reclaim decision %s not re-scored: %s", pk, exc)
            counts["refused"] += 1
            continue
        counts["scored"] += 1
        if decision.flipped_at != before:
            counts["flipped"] += 1
    counts["executed"] = decisions_mark_executed(now=now)
    return counts


# --- the planner over the inventory ---------------------------------------------------------


def leased_document(
    facts: Sequence[planner.LineFacts], *, workload: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One inventory scenario with every given line's GPUs leased (the `clusters.services`
    seam), the base the planner and the revenue-at-risk page value lines against."""
    gpus: dict[int, int] = {}
    for f in facts:
        gpus[f.cluster_id] = gpus.get(f.cluster_id, 0) + f.gpus
    return scenario_document(
        clusters=[Cluster(pk=pk) for pk in gpus] if gpus else [],
        leased_gpus=gpus,
        workload=workload,
        economics=dict(DEFAULT_ECONOMICS),
    )


def plan_for(
    *,
    need: planner.Need,
    notice_date: dt.date,
    economics: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    table: bool = True,
) -> planner.Plan:
    """Rank the candidate sets for `need` among all reclaimable lines (a read; nothing written).

    Builds one inventory scenario with every candidate line's GPUs leased (the seam of
    `clusters.services`) and hands it to the pure planner.
    """
    qs = selectors.reclaimable_lines()
    if need.site_slug:
        qs = qs.filter(cluster__site__slug=need.site_slug)
    facts = selectors.line_facts(list(qs.values_list("pk", flat=True)))
    base = leased_document(facts, workload=workload)
    return planner.plan(
        facts, need, notice_date=notice_date, base_document=base, economics=economics, table=table
    )


def decision_stored_matches_model(decision: ReclaimDecision) -> bool:
    """Does a fresh run of the model on the stored inputs give the stored assessment?"""
    parts = _scored(decision.inputs)["parts"]
    fresh = [perfmodel.assess(perfmodel.Scenario.from_dict(p["scenario"])).to_dict() for p in parts]
    return fresh == _scored(decision.assessment)["parts"]
