"""Acceptance: how each allocated node is handed over (docs/rules/fleet.md, "Delivery and
acceptance").

An operator records a node's acceptance for its allocation: the tests run with their measured
values, each judged against the threshold the performance model derives for the node's group
(`clusters.acceptance`), the verdict, who signed and when, and the batch of a phased hand-over.

* The latest record of an allocation (by `signed_at`, then id) decides: when it passed, the
  node is accepted since the first of its latest run of passing records (`Allocation.
  accepted_at`; a retest that passes again does not move it), and `node.accepted` is emitted
  whenever that instant changes; when it failed, the node is not accepted (`accepted_at` is
  cleared) and an incident is opened (source `acceptance`), or the open one a failed record
  already opened is kept. A backdated record changes the verdict only through that rule.
* A passing record resolves the open incident an earlier failed record of the allocation opened.
* An nccl-tests run whose records all pass, on nodes of one cluster, also calibrates that
  cluster (`clusters.calibrations.cluster_calibration_from_run`: same rows, fitted piecewise,
  dated `signed_at`) when it has enough rows to fit; its records point at the calibration
  (`calibration`). A run that failed measured a fault, not the cluster, and calibrates nothing.
* Refused, with nothing written: a naive instant, a signature in the future, a node not
  allocated to that line at that instant, an allocation already ended (or replaced), an unknown
  test name or a malformed test.

Lock: the lease row (docs/architecture.md, "Lock order", 3), so records of one lease are
written one after another and the latest is decided on fresh rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters import acceptance as thresholds
from clusters import calibrations, fleet
from clusters.choices import IncidentCategory, IncidentSource, IncidentStatus, Severity
from clusters.models import Incident, Node
from clusters.perfmodel import nccl
from common import events
from common.clock import resolve_now
from common.db import lock_row
from common.exceptions import Conflict, InvalidInput

from .choices import HOLDING, LineStatus
from .models import AcceptanceRecord, Allocation, Lease, LeaseLine

if TYPE_CHECKING:
    from django.contrib.auth.models import User

NODE_ACCEPTED = "node.accepted"

# Where results come from (`AcceptanceRecord.source`).
SOURCE_NCCL = "nccl-tests"
SOURCE_JSON = "json"
SOURCE_MANUAL = "manual"
SOURCES = (SOURCE_NCCL, SOURCE_JSON, SOURCE_MANUAL)

MAX_TESTS = 20
MAX_BATCH_LABEL = 64


class InvalidAcceptance(InvalidInput):
    code = "invalid_acceptance"
    default_message = "The acceptance record is not valid."


class NodeNotAllocated(Conflict):
    code = "node_not_allocated"
    default_message = "The node is not allocated to that line at that instant."


class AllocationEnded(Conflict):
    code = "allocation_ended"
    default_message = "The node's allocation to that line has ended."


class InvalidAcceptanceBatch(InvalidInput):
    """A batch with any refused item is refused whole; `extra.errors` names each item."""

    code = "invalid_acceptance_batch"
    default_message = "Some acceptance items were refused; nothing was recorded."


@dataclass(frozen=True)
class AcceptanceInput:
    """One node's results, before judgment: `tests` is a list of `{"name", "measured"}`
    (plus `size_bytes` for the bus bandwidth: the message size it was measured at)."""

    line: LeaseLine
    node: Node
    tests: Sequence[dict[str, Any]]
    signed_at: dt.datetime
    batch: str = ""
    source: str = SOURCE_MANUAL
    raw: str = ""
    position: int | None = None  # its place in the file it came from (default: in the list)


@dataclass
class Parsed:
    """What a results file holds: the items read, and the entries refused while reading
    (`{"item", "hostname", "code", "detail"}`), so a refusal can name every failing entry."""

    items: list[AcceptanceInput]
    errors: list[dict[str, Any]]
    total: int


# --- judging ------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAcceptance(f"{where}: a finite number is required", extra={"field": where})
    if value < 0:
        raise InvalidAcceptance(f"{where}: must not be negative", extra={"field": where})
    return float(value)


def judge(
    line: LeaseLine, tests: Sequence[dict[str, Any]], cache: dict[Any, Any] | None = None
) -> list[dict[str, Any]]:
    """Each test with its threshold from the model for the line's group, unit, rule, verdict.

    The group is the line's nodes in its cluster (`node_count`). Raises `InvalidAcceptance`
    naming the test for an unknown name, a duplicate, a missing or non-numeric value."""
    if not isinstance(tests, list | tuple) or not tests:
        raise InvalidAcceptance("at least one test is required", extra={"field": "tests"})
    if len(tests) > MAX_TESTS:
        raise InvalidAcceptance(f"at most {MAX_TESTS} tests", extra={"field": "tests"})
    cache = {} if cache is None else cache
    judged: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, test in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(test, dict):
            raise InvalidAcceptance(f"{where}: an object is required", extra={"field": where})
        name = test.get("name")
        spec = thresholds.TESTS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise InvalidAcceptance(
                f"{where}.name: unknown test {name!r} (known: {', '.join(thresholds.TESTS)})",
                extra={"field": f"{where}.name"},
            )
        name = spec.name
        if name in seen:
            raise InvalidAcceptance(f"{where}.name: {name} given twice", extra={"field": where})
        seen.add(name)
        allowed = {"name", "measured"} | (
            {"size_bytes"} if name == thresholds.TEST_BUSBW else set()
        )
        unknown = sorted(set(test) - allowed)
        if unknown:
            raise InvalidAcceptance(
                f"{where}: unknown field {unknown[0]!r}", extra={"field": f"{where}.{unknown[0]}"}
            )
        measured = _number(test.get("measured"), f"{where}.measured")
        size = test.get("size_bytes", thresholds.REFERENCE_MESSAGE_BYTES)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 2**40:
            raise InvalidAcceptance(
                f"{where}.size_bytes: a whole number of bytes from 1 to 2^40",
                extra={"field": f"{where}.size_bytes"},
            )
        key = (line.cluster_id, line.node_count, size)
        if key not in cache:
            cache[key] = thresholds.thresholds_for(
                line.cluster, nodes=line.node_count, message_bytes=size
            )
        th: thresholds.Thresholds = cache[key]
        threshold = th.threshold_of(name)
        entry: dict[str, Any] = {
            "name": name,
            "measured": measured,
            "threshold": threshold,
            "unit": spec.unit,
            "rule": spec.rule,
            "passed": thresholds.passes(spec.rule, measured, threshold),
        }
        if name == thresholds.TEST_BUSBW:
            entry["predicted"] = th.predicted_busbw_gbytes_per_s
            entry["size_bytes"] = size
        elif name == thresholds.TEST_STEP:
            entry["predicted"] = th.predicted_step_s
        judged.append(entry)
    return judged


# --- writes -------------------------------------------------------------------------------------


def _check_instant(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise InvalidAcceptance(f"{name} must be an instant", extra={"field": name})
    if timezone.is_naive(value):
        raise InvalidAcceptance(f"{name} must be timezone-aware", extra={"field": name})
    return value


def _allocation_at(line: LeaseLine, node: Node, at: dt.datetime) -> Allocation:
    allocation = (
        Allocation.objects.filter(line=line, node=node, starts_at__lte=at, ends_at__gt=at)
        .select_related("line__lease", "line__cluster__accelerator", "node", "replaced_by")
        .first()
    )
    if allocation is None:
        raise NodeNotAllocated(
            f"{node.hostname} is not allocated to line {line.pk} at {at.isoformat()}",
            extra={"field": "node", "hostname": node.hostname, "line": line.pk},
        )
    return allocation


def _check_open(allocation: Allocation, now: dt.datetime) -> None:
    line = allocation.line
    lease = line.lease
    ended = (
        allocation.ends_at <= now
        or line.status != LineStatus.OPEN
        or lease.status not in HOLDING
        or hasattr(allocation, "replaced_by")
    )
    if ended:
        raise AllocationEnded(
            f"the allocation of {allocation.node.hostname} to line {line.pk} has ended",
            extra={"field": "node", "hostname": allocation.node.hostname, "line": line.pk},
        )


def node_accepted_payload(record: AcceptanceRecord, accepted_at: dt.datetime) -> dict[str, Any]:
    """The `node.accepted` payload (the fleet contract, docs/api.md "Webhooks")."""
    allocation = record.allocation
    lease = allocation.line.lease
    return {
        "tenant": lease.tenant_id,
        "lease": lease.pk,
        "lease_number": lease.number,
        "line": allocation.line_id,
        "node": record.node_id,
        "hostname": record.node.hostname,
        "record": record.pk,
        "accepted_at": accepted_at.isoformat(),
    }


def _failure_incident(
    *, allocation: Allocation, judged: list[dict[str, Any]], now: dt.datetime, actor: User | None
) -> Incident:
    """The open incident a failed record of this allocation opened, or a new one."""
    existing = (
        Incident.objects.filter(
            acceptance_records__allocation=allocation,
            status=IncidentStatus.OPEN,
            source=IncidentSource.ACCEPTANCE,
        )
        .order_by("-opened_at", "-id")
        .first()
    )
    if existing is not None:
        return existing
    failed = [t for t in judged if not t["passed"]]
    burn_in = any(t["name"] == thresholds.TEST_BURN_IN for t in failed)
    description = "; ".join(
        f"{t['name']} measured {t['measured']:g} {t['unit']}, needs {t['rule']} {t['threshold']:g}"
        for t in failed
    )
    return fleet.incident_open(
        node=allocation.node,
        category=IncidentCategory.GPU if burn_in else IncidentCategory.PERFORMANCE,
        severity=Severity.DOWN if burn_in else Severity.DEGRADED,
        source=IncidentSource.ACCEPTANCE,
        now=now,
        description=f"Failed acceptance: {description}",
        evidence={"tests": judged, "line": allocation.line_id},
        actor=actor,
    )


def _record(
    item: AcceptanceInput, *, now: dt.datetime, signed_by: User | None, cache: dict[Any, Any]
) -> AcceptanceRecord:
    signed_at = _check_instant(item.signed_at, "signed_at")
    if signed_at > now:
        raise InvalidAcceptance("signed_at is in the future", extra={"field": "signed_at"})
    if item.source not in SOURCES:
        raise InvalidAcceptance(f"unknown source {item.source!r}", extra={"field": "source"})
    if not isinstance(item.batch, str) or len(item.batch) > MAX_BATCH_LABEL:
        raise InvalidAcceptance(
            f"batch: at most {MAX_BATCH_LABEL} characters", extra={"field": "batch"}
        )
    lock_row(Lease, item.line.lease_id)
    line = LeaseLine.objects.select_related("lease", "cluster__accelerator").get(pk=item.line.pk)
    allocation = _allocation_at(line, item.node, signed_at)
    _check_open(allocation, now)
    judged = judge(line, item.tests, cache)
    passed = all(t["passed"] for t in judged)
    record = AcceptanceRecord.objects.create(
        allocation=allocation,
        node=allocation.node,
        batch=item.batch,
        tests=judged,
        passed=passed,
        source=item.source,
        raw=item.raw,
        signed_by=signed_by,
        signed_at=signed_at,
    )
    # Newest first: the node is accepted while its latest records pass, since the first of them.
    history = list(
        allocation.acceptance_records.order_by("-signed_at", "-id").values_list(
            "pk", "passed", "signed_at"
        )
    )
    accepted_at = None
    for _, ok, at in history:
        if not ok:
            break
        accepted_at = at
    is_latest = history[0][0] == record.pk
    if is_latest and passed:
        for incident in Incident.objects.filter(
            acceptance_records__allocation=allocation,
            status=IncidentStatus.OPEN,
            source=IncidentSource.ACCEPTANCE,
        ).distinct():
            fleet.incident_resolve(
                incident=incident,
                now=max(signed_at, incident.opened_at),
                resolution=f"Passed acceptance (record {record.pk}).",
                actor=signed_by,
            )
    if accepted_at != allocation.accepted_at:
        allocation.accepted_at = accepted_at
        allocation.save(update_fields=["accepted_at"])
        if accepted_at is not None:
            record.allocation = allocation
            events.emit(
                NODE_ACCEPTED,
                subject="acceptance_record",
                subject_id=record.pk,
                payload=node_accepted_payload(record, accepted_at),
                occurred_at=signed_at,
            )
    if is_latest and not passed:
        record.incident = _failure_incident(
            allocation=allocation, judged=judged, now=signed_at, actor=signed_by
        )
        record.save(update_fields=["incident"])
    return record


@transaction.atomic
def acceptance_record(
    *,
    line: LeaseLine,
    node: Node,
    tests: Sequence[dict[str, Any]],
    signed_at: dt.datetime,
    signed_by: User | None,
    now: dt.datetime | None = None,
    batch: str = "",
    source: str = SOURCE_MANUAL,
    raw: str = "",
) -> AcceptanceRecord:
    """Record one node's acceptance for its allocation to `line` (module docstring)."""
    now = resolve_now(now)
    item = AcceptanceInput(
        line=line, node=node, tests=tests, signed_at=signed_at, batch=batch, source=source, raw=raw
    )
    record = _record(item, now=now, signed_by=signed_by, cache={})
    _calibrate_from_runs([record], signed_by=signed_by, now=now)
    return record


def _position(item: AcceptanceInput, index: int) -> int:
    return item.position if item.position is not None else index


@transaction.atomic
def acceptance_import(
    *,
    items: Sequence[AcceptanceInput],
    signed_by: User | None,
    now: dt.datetime | None = None,
    refused: Sequence[dict[str, Any]] = (),
) -> list[AcceptanceRecord]:
    """Record many nodes' results at once, all or nothing: any refused item refuses the batch,
    and `InvalidAcceptanceBatch.extra["errors"]` lists every refused item (its position,
    hostname, code, detail), with the entries already `refused` while reading the file. Items
    are recorded in lease id order (the lock order)."""
    now = resolve_now(now)
    if not items and not refused:
        raise InvalidAcceptance("no results to record", extra={"field": "items"})
    cache: dict[Any, Any] = {}
    records: list[AcceptanceRecord] = []
    errors: list[dict[str, Any]] = list(refused)
    order = sorted(range(len(items)), key=lambda i: (items[i].line.lease_id, i))
    for index in order:
        item = items[index]
        try:
            with transaction.atomic():
                records.append(_record(item, now=now, signed_by=signed_by, cache=cache))
        except (InvalidAcceptance, NodeNotAllocated, AllocationEnded) as exc:
            errors.append(
                {
                    "item": _position(item, index),
                    "hostname": item.node.hostname,
                    "code": exc.code,
                    "detail": exc.message,
                }
            )
    if errors:
        errors.sort(key=lambda e: e["item"])
        total = len(items) + len(refused)
        raise InvalidAcceptanceBatch(
            f"{len(errors)} of {total} items refused; nothing was recorded",
            extra={"errors": errors},
        )
    _calibrate_from_runs(records, signed_by=signed_by, now=now)
    return records


def _calibrate_from_runs(
    records: Sequence[AcceptanceRecord], *, signed_by: User | None, now: dt.datetime
) -> None:
    """Each nccl-tests run among `records` (the records sharing its text) calibrates its
    cluster when every record passed and all its nodes are in one cluster (module docstring)."""
    runs: dict[str, list[AcceptanceRecord]] = defaultdict(list)
    for record in records:
        if record.source == SOURCE_NCCL and record.raw:
            runs[record.raw].append(record)
    for text, run in runs.items():
        nodes = list(Node.objects.filter(pk__in={r.node_id for r in run}).select_related("cluster"))
        clusters = {node.cluster for node in nodes}
        if len(clusters) != 1 or not all(r.passed for r in run):
            continue
        lease = run[0].allocation.line.lease.number
        names = sorted(node.hostname for node in nodes)
        span = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
        counted = f"{len(nodes)} node" + ("s" if len(nodes) > 1 else "")
        cal = calibrations.cluster_calibration_from_run(
            cluster=clusters.pop(),
            text=text,
            nodes=len(nodes),
            measured_at=max(r.signed_at for r in run),
            actor=signed_by,
            now=now,
            origin=f"acceptance of lease {lease}, {counted} ({span})",
        )
        if cal is not None:
            AcceptanceRecord.objects.filter(pk__in=[r.pk for r in run]).update(calibration=cal)
            for r in run:
                r.calibration = cal


# --- reads --------------------------------------------------------------------------------------


class AcceptanceState:
    PENDING = "pending"
    ACCEPTED = "accepted"
    FAILED = "failed"
    ALL = (PENDING, ACCEPTED, FAILED)


def _latest(field_name: str) -> Subquery:
    return Subquery(
        AcceptanceRecord.objects.filter(allocation=OuterRef("pk"))
        .order_by("-signed_at", "-id")
        .values(field_name)[:1]
    )


def line_allocations(line_ids: Iterable[int] | None = None) -> QuerySet[Allocation]:
    """The allocations that make up lines' hand-over (those not replaced by a spare), each with
    its latest record's verdict, instant, id and batch (`acc_passed`, `acc_at`, `acc_record`,
    `acc_batch`; null when it has none)."""
    qs = Allocation.objects.filter(replaced_by__isnull=True)
    if line_ids is not None:
        qs = qs.filter(line_id__in=list(line_ids))
    return qs.annotate(
        acc_passed=_latest("passed"),
        acc_at=_latest("signed_at"),
        acc_record=_latest("id"),
        acc_batch=_latest("batch"),
    )


def acceptance_state(allocation: Allocation) -> str:
    """pending / accepted / failed from an allocation of `line_allocations`."""
    if allocation.accepted_at is not None:
        return AcceptanceState.ACCEPTED
    if getattr(allocation, "acc_passed", None) is False:
        return AcceptanceState.FAILED
    return AcceptanceState.PENDING


@dataclass
class BatchProgress:
    batch: str
    accepted: int = 0
    failed: int = 0
    first_at: dt.datetime | None = None
    last_at: dt.datetime | None = None


@dataclass
class LineProgress:
    """Where a line's hand-over stands."""

    line_id: int
    lease_id: int
    lease_number: str
    tenant_name: str
    cluster_name: str
    node_count: int
    allocated: int = 0
    accepted: int = 0
    failed: int = 0
    pending: int = 0
    first_accepted_at: dt.datetime | None = None
    last_accepted_at: dt.datetime | None = None
    batches: list[BatchProgress] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.allocated > 0 and self.accepted == self.allocated


def _count(
    p: LineProgress,
    batches: dict[str, BatchProgress],
    *,
    state: str,
    label: str,
    n: int,
    first: dt.datetime | None,
    last: dt.datetime | None,
) -> None:
    """Add `n` allocations of one state (accepted between `first` and `last`) to a line."""
    p.allocated += n
    if state == AcceptanceState.PENDING:
        p.pending += n
        return
    b = batches.setdefault(label, BatchProgress(batch=label))
    if state == AcceptanceState.FAILED:
        p.failed += n
        b.failed += n
        return
    p.accepted += n
    b.accepted += n
    p.first_accepted_at = min(filter(None, (p.first_accepted_at, first)), default=None)
    p.last_accepted_at = max(filter(None, (p.last_accepted_at, last)), default=None)
    b.first_at = min(filter(None, (b.first_at, first)), default=None)
    b.last_at = max(filter(None, (b.last_at, last)), default=None)


def handover_progress(*, lines: QuerySet[LeaseLine] | None = None) -> list[LineProgress]:
    """Hand-over progress of lines (default: open lines of leases that hold capacity), in lease
    and line order. Three queries whatever the number of lines and nodes, and no row per node:
    the allocations without an acceptance record (nearly all of a large line: accepted at
    commencement, or still pending) are counted by the database per line; only those with a
    record (a few per hand-over batch) are read one by one for their latest verdict and batch."""
    if lines is None:
        lines = LeaseLine.objects.filter(status=LineStatus.OPEN, lease__status__in=HOLDING)
    rows = list(lines.select_related("lease__tenant", "cluster__site").order_by("lease_id", "id"))
    progress = {
        line.pk: LineProgress(
            line_id=line.pk,
            lease_id=line.lease_id,
            lease_number=line.lease.number,
            tenant_name=line.lease.tenant.name,
            cluster_name=str(line.cluster),
            node_count=line.node_count,
        )
        for line in rows
    }
    batches: dict[int, dict[str, BatchProgress]] = defaultdict(dict)
    recorded = Exists(AcceptanceRecord.objects.filter(allocation=OuterRef("pk")))
    unrecorded = (
        Allocation.objects.filter(replaced_by__isnull=True, line_id__in=list(progress))
        .filter(~recorded)
        .order_by()
        .values("line_id")
        .annotate(
            n=Count("pk"),
            accepted=Count("accepted_at"),
            first=Min("accepted_at"),
            last=Max("accepted_at"),
        )
    )
    for row in unrecorded:
        p, by_label = progress[row["line_id"]], batches[row["line_id"]]
        pending = row["n"] - row["accepted"]
        if pending:
            _count(
                p,
                by_label,
                state=AcceptanceState.PENDING,
                label="",
                n=pending,
                first=None,
                last=None,
            )
        if row["accepted"]:
            _count(
                p,
                by_label,
                state=AcceptanceState.ACCEPTED,
                label="",
                n=row["accepted"],
                first=row["first"],
                last=row["last"],
            )
    with_records = line_allocations(progress).filter(recorded).only("id", "line_id", "accepted_at")
    for allocation in with_records:
        at = allocation.accepted_at
        _count(
            progress[allocation.line_id],
            batches[allocation.line_id],
            state=acceptance_state(allocation),
            label=getattr(allocation, "acc_batch", None) or "",
            n=1,
            first=at,
            last=at,
        )
    for line_id, by_label in batches.items():
        progress[line_id].batches = sorted(
            by_label.values(), key=lambda b: (b.first_at is None, b.first_at, b.batch)
        )
    return list(progress.values())


def records_for_lines(line_ids: Iterable[int]) -> QuerySet[AcceptanceRecord]:
    """Acceptance records of some lines, newest first, with what a list shows."""
    return AcceptanceRecord.objects.filter(allocation__line_id__in=list(line_ids)).select_related(
        "node", "allocation__line__lease", "signed_by"
    )


# --- reading what tools print -------------------------------------------------------------------
#
# Two forms (docs/rules/fleet.md, "Importing results"): the table nccl-tests' `all_reduce_perf`
# prints for a node group (its bus bandwidth at the largest message size counts for every node
# of the run), and a JSON document with per-node results (schema `landlord.acceptance/1`).

JSON_SCHEMA = "landlord.acceptance/1"
MAX_IMPORT_NODES = 10_000
_DEVICE_LINE = re.compile(r"^#\s*Rank\s+\d+\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(?P<host>\S+)\s")


def nccl_hostnames(text: str) -> list[str]:
    """The hosts an `all_reduce_perf` run used, from its "Using devices" lines, in order."""
    hosts: dict[str, None] = {}
    for raw in text.splitlines():
        m = _DEVICE_LINE.match(raw.strip())
        if m:
            hosts.setdefault(m.group("host"), None)
    return list(hosts)


def nccl_busbw_test(text: str) -> dict[str, Any]:
    """The bus bandwidth test from an `all_reduce_perf` table: the out-of-place busbw at the
    largest message size. Raises `InvalidAcceptance` naming the line when the text is no table."""
    try:
        rows = nccl.parse_all_reduce_perf(text)
    except nccl.NcclParseError as exc:
        raise InvalidAcceptance(f"nccl-tests output: {exc}", extra={"field": "nccl"}) from None
    largest = max(rows, key=lambda r: r.size_bytes)
    return {
        "name": thresholds.TEST_BUSBW,
        "measured": largest.busbw_gbps,
        "size_bytes": largest.size_bytes,
    }


def _parse_instant(value: Any, where: str) -> dt.datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise InvalidAcceptance(f"{where}: an ISO 8601 instant is required", extra={"field": where})
    if timezone.is_naive(parsed):
        raise InvalidAcceptance(
            f"{where}: the instant needs an offset (Z or ±hh:mm)", extra={"field": where}
        )
    return parsed


@dataclass
class _Resolver:
    """Finds the lease, and each node's line in it (the line holding it at the instant)."""

    lease: Lease
    line: LeaseLine | None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def item(
        self,
        index: int,
        hostname: Any,
        *,
        tests: Sequence[dict[str, Any]],
        signed_at: dt.datetime,
        batch: str,
        source: str,
        raw: str,
    ) -> AcceptanceInput | None:
        node = Node.objects.filter(hostname=hostname).first() if isinstance(hostname, str) else None
        if node is None:
            self.errors.append(
                {
                    "item": index,
                    "hostname": hostname,
                    "code": "unknown_node",
                    "detail": f"no node named {hostname!r}",
                }
            )
            return None
        line = self.line
        if line is None:
            allocation = (
                Allocation.objects.filter(
                    line__lease=self.lease,
                    node=node,
                    starts_at__lte=signed_at,
                    ends_at__gt=signed_at,
                )
                .select_related("line")
                .first()
            )
            line = allocation.line if allocation is not None else None
        if line is None:
            line = self.lease.lines.filter(cluster_id=node.cluster_id).first()
        if line is None:
            self.errors.append(
                {
                    "item": index,
                    "hostname": hostname,
                    "code": NodeNotAllocated.code,
                    "detail": f"{hostname} is in no line of lease {self.lease.number}",
                }
            )
            return None
        return AcceptanceInput(
            line=line,
            node=node,
            tests=tests,
            signed_at=signed_at,
            batch=batch,
            source=source,
            raw=raw,
            position=index,
        )


def _lease_and_line(lease_ref: Any, line_id: Any) -> tuple[Lease, LeaseLine | None]:
    lease = None
    if isinstance(lease_ref, str) and lease_ref:
        lease = Lease.objects.filter(number=lease_ref).first()
    elif isinstance(lease_ref, int) and not isinstance(lease_ref, bool):
        lease = Lease.objects.filter(pk=lease_ref).first()
    if lease is None:
        raise InvalidAcceptance(f"unknown lease {lease_ref!r}", extra={"field": "lease"})
    line = None
    if line_id is not None:
        if isinstance(line_id, bool) or not isinstance(line_id, int):
            raise InvalidAcceptance("line must be a line id", extra={"field": "line"})
        line = lease.lines.filter(pk=line_id).first()
        if line is None:
            raise InvalidAcceptance(
                f"lease {lease.number} has no line {line_id}", extra={"field": "line"}
            )
    return lease, line


def items_from_nccl(
    text: str,
    *,
    lease: str | int,
    signed_at: dt.datetime,
    hostnames: Sequence[str] | None = None,
    line: int | None = None,
    batch: str = "",
    step_time_s: float | None = None,
) -> Parsed:
    """One item per node of an `all_reduce_perf` run (the hosts named, or those the run lists),
    each with the run's bus bandwidth (and the reference step time, if measured)."""
    _check_instant(signed_at, "signed_at")
    busbw = nccl_busbw_test(text)
    hosts = list(hostnames) if hostnames else nccl_hostnames(text)
    if not hosts:
        raise InvalidAcceptance(
            "no hostnames given and none in the run's device list", extra={"field": "hostnames"}
        )
    tests = [busbw]
    if step_time_s is not None:
        tests.append({"name": thresholds.TEST_STEP, "measured": step_time_s})
    lease_row, line_row = _lease_and_line(lease, line)
    resolver = _Resolver(lease_row, line_row)
    items = [
        resolver.item(
            i, host, tests=tests, signed_at=signed_at, batch=batch, source=SOURCE_NCCL, raw=text
        )
        for i, host in enumerate(hosts)
    ]
    return Parsed([item for item in items if item is not None], resolver.errors, len(hosts))


def items_from_json(
    document: Any,
    *,
    lease: str | int | None = None,
    signed_at: dt.datetime | None = None,
    batch: str | None = None,
) -> Parsed:
    """Items from a `landlord.acceptance/1` document (docs/rules/fleet.md, "Importing
    results"). Arguments given here fill what the document leaves out. A malformed document
    raises `InvalidAcceptance`; a malformed node entry is returned among the errors."""
    if not isinstance(document, dict):
        raise InvalidAcceptance("the document must be a JSON object", extra={"field": "$"})
    allowed = {"schema", "lease", "line", "batch", "signed_at", "nodes"}
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidAcceptance(f"unknown field {unknown[0]!r}", extra={"field": unknown[0]})
    if document.get("schema", JSON_SCHEMA) != JSON_SCHEMA:
        raise InvalidAcceptance(f"schema must be {JSON_SCHEMA!r}", extra={"field": "schema"})
    lease_row, line_row = _lease_and_line(document.get("lease", lease), document.get("line"))
    default_at = (
        _parse_instant(document["signed_at"], "signed_at") if "signed_at" in document else signed_at
    )
    default_batch = document.get("batch", batch or "")
    nodes = document.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise InvalidAcceptance("nodes must be a non-empty list", extra={"field": "nodes"})
    if len(nodes) > MAX_IMPORT_NODES:
        raise InvalidAcceptance(
            f"at most {MAX_IMPORT_NODES} nodes per document", extra={"field": "nodes"}
        )
    resolver = _Resolver(lease_row, line_row)
    items: list[AcceptanceInput] = []
    node_fields = {"hostname", "signed_at", "batch", "tests", "nccl"}
    for i, entry in enumerate(nodes):
        where = f"nodes[{i}]"
        hostname = entry.get("hostname") if isinstance(entry, dict) else None
        try:
            if not isinstance(entry, dict):
                raise InvalidAcceptance(f"{where}: an object is required")
            extra_keys = sorted(set(entry) - node_fields)
            if extra_keys:
                raise InvalidAcceptance(f"{where}: unknown field {extra_keys[0]!r}")
            at = (
                _parse_instant(entry["signed_at"], f"{where}.signed_at")
                if "signed_at" in entry
                else default_at
            )
            if at is None:
                raise InvalidAcceptance(f"{where}.signed_at is required")
            _check_instant(at, f"{where}.signed_at")
            tests = entry.get("tests", [])
            if not isinstance(tests, list):
                raise InvalidAcceptance(f"{where}.tests must be a list")
            tests = list(tests)
            if "nccl" in entry:
                if not isinstance(entry["nccl"], str):
                    raise InvalidAcceptance(f"{where}.nccl must be the all_reduce_perf text")
                tests.append(nccl_busbw_test(entry["nccl"]))
            label = entry.get("batch", default_batch)
            if not isinstance(label, str):
                raise InvalidAcceptance(f"{where}.batch must be text")
        except InvalidAcceptance as exc:
            resolver.errors.append(
                {"item": i, "hostname": hostname, "code": exc.code, "detail": exc.message}
            )
            continue
        item = resolver.item(
            i,
            hostname,
            tests=tests,
            signed_at=at,
            batch=label,
            source=SOURCE_JSON,
            raw=json.dumps(entry, sort_keys=True),
        )
        if item is not None:
            items.append(item)
    return Parsed(items, resolver.errors, len(nodes))


@dataclass(frozen=True)
class PreviewRow:
    """What recording an item would do: its verdict and tests, or why it would be refused
    (`passed` is None then)."""

    item: int
    hostname: str
    lease_number: str
    line: int | None
    batch: str
    passed: bool | None
    tests: list[dict[str, Any]]
    code: str = ""
    detail: str = ""


def acceptance_preview(*, parsed: Parsed, now: dt.datetime | None = None) -> list[PreviewRow]:
    """Judge every item exactly as `acceptance_import` would, and write nothing (each item runs
    in a savepoint that is rolled back). Entries refused while reading come out refused."""
    now = resolve_now(now)
    rows = [
        PreviewRow(
            item=e["item"],
            hostname=str(e["hostname"]),
            lease_number="",
            line=None,
            batch="",
            passed=None,
            tests=[],
            code=e["code"],
            detail=e["detail"],
        )
        for e in parsed.errors
    ]
    cache: dict[Any, Any] = {}
    with transaction.atomic():
        for index, item in enumerate(parsed.items):
            base: dict[str, Any] = {
                "item": _position(item, index),
                "hostname": item.node.hostname,
                "lease_number": item.line.lease.number,
                "line": item.line.pk,
                "batch": item.batch,
            }
            try:
                with transaction.atomic():
                    record = _record(item, now=now, signed_by=None, cache=cache)
                    rows.append(PreviewRow(**base, passed=record.passed, tests=record.tests))
                    transaction.set_rollback(True)
            except (InvalidAcceptance, NodeNotAllocated, AllocationEnded) as exc:
                rows.append(
                    PreviewRow(**base, passed=None, tests=[], code=exc.code, detail=exc.message)
                )
        transaction.set_rollback(True)
    return sorted(rows, key=lambda r: r.item)


# --- demo ---------------------------------------------------------------------------------------

DEMO_HANDOVER_LEASE = "demo:helios-campus2-notice"
DEMO_SIGNER = "demo-burn-in"
DEMO_BATCH_NODES = 16


def demo_accept_on_time(*, now: dt.datetime) -> None:
    """The demo's history predates hand-over records: its allocations started by `now` count
    as accepted at their start (as migration leasing/0010 did for the allocations that existed
    then), bar the phased hand-over line (`seed_demo_handover`: its records say when) and
    replacements (handed over on their own). Only pending allocations are touched."""
    phased = Lease.objects.filter(reference=DEMO_HANDOVER_LEASE).first()
    pending = Allocation.objects.filter(
        accepted_at__isnull=True, starts_at__lte=now, line__lease__reference__startswith="demo:"
    ).exclude(replacement_for__isnull=False)
    if phased is not None:
        pending = pending.exclude(line=phased.lines.order_by("id").first())
    pending.update(accepted_at=F("starts_at"))


def seed_demo_handover(*, now: dt.datetime) -> dict[str, int]:
    """The demo's hand-over story, once (a second run changes nothing).

    Every demo allocation already running is taken as handed over with its lease (accepted at
    its start, as the migration did for allocations older than acceptance records) — except the
    first line of `DEMO_HANDOVER_LEASE`, handed over in phases through acceptance records: rack 1
    (up to 16 nodes) passed the day after commencement, rack 2 three days after, with one node
    failing the bus bandwidth test (its incident stays open); the rest still wait. Results sit
    around the model's prediction for the group, as a real burn-in's would."""
    from django.contrib.auth import get_user_model

    lease = Lease.objects.filter(reference=DEMO_HANDOVER_LEASE).first()
    line = lease.lines.order_by("id").first() if lease is not None else None
    if lease is None or line is None:
        return {"acceptance_records": 0}
    if AcceptanceRecord.objects.filter(allocation__line=line).exists():
        return {"acceptance_records": 0}
    demo_accept_on_time(now=now)
    signer, _ = get_user_model().objects.get_or_create(
        username=DEMO_SIGNER,
        defaults={"first_name": "Burn-in", "last_name": "team", "is_staff": True},
    )
    allocations = list(
        line.allocations.filter(starts_at__lte=now, ends_at__gt=now)
        .select_related("node")
        .order_by("node__hostname")[: 2 * DEMO_BATCH_NODES]
    )
    predicted = thresholds.thresholds_for(line.cluster, nodes=line.node_count)
    half = (len(allocations) + 1) // 2
    items = []
    for i, allocation in enumerate(allocations):
        rack = 1 if i < half else 2
        failing = i == len(allocations) - 1 and rack == 2
        wobble = 1.0 + 0.01 * ((i * 7) % 5)  # 1.00–1.04: measured runs a little above/below
        busbw = predicted.predicted_busbw_gbytes_per_s * (0.62 if failing else 0.97 * wobble)
        items.append(
            AcceptanceInput(
                line=line,
                node=allocation.node,
                tests=[
                    {"name": thresholds.TEST_BUSBW, "measured": round(busbw, 2)},
                    {
                        "name": thresholds.TEST_STEP,
                        "measured": round(predicted.predicted_step_s * (0.96 + 0.02 * wobble), 4),
                    },
                    {"name": thresholds.TEST_BURN_IN, "measured": 0},
                ],
                signed_at=max(allocation.starts_at, lease.commencement)
                + dt.timedelta(days=1 if rack == 1 else 3, hours=10),
                batch=f"rack-{rack}",
                source=SOURCE_JSON,
            )
        )
    records = acceptance_import(items=items, signed_by=signer, now=now)
    return {"acceptance_records": len(records)}
