"""Record calibrations of links and clusters from measured all-reduce times; read the latest.

The fit itself is the model's (`clusters/perfmodel/calibration.py`, pure); this module parses
the operator's measurement (`manage.py calibrate`, or an nccl-tests run uploaded for acceptance,
which leasing hands to `cluster_calibration_from_run`), fits it, and stores the fit with its
data, its date, who recorded it and what (docs/model.md, "Calibration"). `scenario_document`
scores with the latest fit of each link and cluster (`latest_link_calibrations`,
`latest_cluster_calibrations`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import OuterRef, Subquery

from common.exceptions import InvalidInput

from .choices import CalibrationSource
from .models import Cluster, ClusterCalibration, LinkCalibration, SiteLink
from .perfmodel import calibration, link
from .perfmodel.nccl import MIN_SIZE_BYTES, NcclParseError, parse_all_reduce_perf, parse_ranks

# Raw text kept with a calibration: nccl-tests output is a few kB; anything far larger is not it.
MAX_RAW_CHARS = 1_000_000


class CalibrationUnreadable(InvalidInput):
    code = "calibration_unreadable"
    default_message = "The measurement could not be read."


class CalibrationUnfit(InvalidInput):
    code = "calibration_unfit"
    default_message = "The measurement cannot support a fit."


class CalibrationInFuture(InvalidInput):
    code = "calibration_in_future"
    default_message = "A measurement cannot be dated in the future."


def _points_from_nccl(text: str, min_bytes: int) -> list[dict[str, Any]]:
    if len(text) > MAX_RAW_CHARS:
        raise CalibrationUnreadable(f"more than {MAX_RAW_CHARS:,} characters")
    try:
        rows = parse_all_reduce_perf(text)
    except NcclParseError as exc:
        raise CalibrationUnreadable(str(exc)) from None
    return [r.as_dict() for r in rows if r.size_bytes >= min_bytes]


def _measured(points: Sequence[dict[str, Any]], source: str) -> tuple[list[int], list[float], int]:
    """(sizes in bytes, measured times in s, ring segments) of stored points of ``source``:
    nccl-tests' out-of-place times with one segment (NCCL's many slices), the harness's with two.
    """
    sizes = [int(p["size_bytes"]) for p in points]
    if source == CalibrationSource.NCCL_TESTS:
        return sizes, [p["out_of_place"]["time_us"] * 1e-6 for p in points], 1
    return sizes, [float(p["comm_s"]) for p in points], 2


def _fit(
    points: Sequence[dict[str, Any]], source: str, ranks: int
) -> calibration.AllReduceFit | calibration.PiecewiseFit:
    """nccl-tests: the piecewise fit (its regimes; α of the smallest sizes, U of the largest);
    the harness: one two-segment ring."""
    sizes, times, segments = _measured(points, source)
    try:
        if source == CalibrationSource.NCCL_TESTS:
            return calibration.fit_piecewise(sizes, times, ranks)
        return calibration.fit_allreduce(sizes, times, ranks, segments=segments)
    except calibration.CalibrationError as exc:
        raise CalibrationUnfit(str(exc)) from None


def _record(
    model: type[LinkCalibration] | type[ClusterCalibration],
    owner: dict[str, Any],
    *,
    source: str,
    ranks: int,
    text: str,
    points: Sequence[dict[str, Any]] | None,
    min_bytes: int,
    measured_at: dt.datetime,
    actor: AbstractBaseUser | None,
    now: dt.datetime,
    origin: str,
) -> Any:
    """Check, parse, fit and store one calibration of ``owner`` (a link or a cluster)."""
    if source not in CalibrationSource.values:
        raise CalibrationUnreadable(f"unknown source {source!r}")
    if measured_at > now:
        raise CalibrationInFuture()
    try:
        calibration.check_ranks(ranks)
    except calibration.CalibrationError as exc:
        raise CalibrationUnfit(str(exc)) from None
    if source == CalibrationSource.NCCL_TESTS:
        data = _points_from_nccl(text, min_bytes)
    else:
        if not points:
            raise CalibrationUnreadable("harness points are required")
        data = [{"size_bytes": int(p["size_bytes"]), "comm_s": float(p["comm_s"])} for p in points]
    fit = _fit(data, source, ranks)
    fields: dict[str, Any] = {
        "source": source,
        "ranks": ranks,
        "measured_at": measured_at,
        "created_at": now,
        "created_by": actor,
        "origin": origin,
        "data": data,
        "raw": text,
        "step_latency_us": fit.step_latency_us,
        "usable_gbps": fit.usable_gbps,
        "points": fit.points,
        "median_rel_error": fit.median_rel_error,
        "max_rel_error": fit.max_rel_error,
        "regimes": (
            [r.as_dict() for r in fit.regimes] if isinstance(fit, calibration.PiecewiseFit) else []
        ),
    }
    return model.objects.create(**owner, **fields)


@transaction.atomic
def link_calibration_record(
    *,
    link: SiteLink,
    source: str,
    ranks: int,
    measured_at: dt.datetime,
    actor: AbstractBaseUser | None,
    now: dt.datetime,
    text: str = "",
    points: Sequence[dict[str, Any]] | None = None,
    min_bytes: int = 0,
    origin: str = "",
) -> LinkCalibration:
    """Fit an all-reduce measured across ``link`` and store it with its data.

    ``source`` nccl_tests: ``text`` is ``all_reduce_perf`` output (sizes below ``min_bytes``
    left out). ``source`` harness: ``points`` are ``{"size_bytes", "comm_s"}`` all-reduce times.
    ``origin`` says what recorded it (the command, an acceptance upload). Refusals (nothing
    written): calibration_unreadable (no table, or a size or time beyond what a run prints),
    calibration_unfit (ranks, points or fitted figures outside the bounds of
    `calibration.fit_piecewise`), calibration_in_future.
    """
    cal: LinkCalibration = _record(
        LinkCalibration,
        {"link": link},
        source=source,
        ranks=ranks,
        text=text,
        points=points,
        min_bytes=min_bytes,
        measured_at=measured_at,
        actor=actor,
        now=now,
        origin=origin,
    )
    return cal


@transaction.atomic
def cluster_calibration_record(
    *,
    cluster: Cluster,
    text: str,
    ranks: int,
    measured_at: dt.datetime,
    actor: AbstractBaseUser | None,
    now: dt.datetime,
    min_bytes: int = 0,
    origin: str = "",
) -> ClusterCalibration:
    """Fit an ``all_reduce_perf`` run inside ``cluster`` and store it with its data.

    The fitted usable throughput is the ring's per-link rate, i.e. nccl-tests' bus bandwidth.
    Refusals as :func:`link_calibration_record`.
    """
    cal: ClusterCalibration = _record(
        ClusterCalibration,
        {"cluster": cluster},
        source=CalibrationSource.NCCL_TESTS,
        ranks=ranks,
        text=text,
        points=None,
        min_bytes=min_bytes,
        measured_at=measured_at,
        actor=actor,
        now=now,
        origin=origin,
    )
    return cal


def cluster_calibration_from_run(
    *,
    cluster: Cluster,
    text: str,
    nodes: int,
    measured_at: dt.datetime,
    actor: AbstractBaseUser | None,
    now: dt.datetime,
    origin: str,
) -> ClusterCalibration | None:
    """Calibrate ``cluster`` from an ``all_reduce_perf`` run recorded for another purpose (the
    acceptance of ``nodes`` of its nodes), when the run can support a fit; None otherwise.

    Ranks: the run's device list, else ``nodes`` × the cluster's GPUs per node. Sizes of 0 bytes
    are left out (they time no transfer). A fit needs two ranks and two distinct message sizes
    with times, all within the fit's bounds, and a plausible result (`calibration.fit_piecewise`);
    a run short of that, e.g. the single 8 GiB row an acceptance needs, records no calibration
    and raises nothing.
    """
    ranks = parse_ranks(text) or nodes * cluster.gpus_per_node
    try:
        return cluster_calibration_record(
            cluster=cluster,
            text=text,
            ranks=ranks,
            measured_at=measured_at,
            actor=actor,
            now=now,
            min_bytes=MIN_SIZE_BYTES,
            origin=origin,
        )
    except (CalibrationUnfit, CalibrationUnreadable):
        return None


def predicted_vs_measured(
    cal: LinkCalibration | ClusterCalibration,
) -> tuple[list[int], list[float], list[float]]:
    """(sizes in bytes, measured s, predicted s) of a calibration's points: what its fit
    predicts for each measured all-reduce, to draw one against the other. With stored regimes
    each size is predicted by the regime covering it; without (the harness, or a calibration
    recorded before regimes were stored), by the one ring of the stored figures."""
    sizes, measured, segments = _measured(cal.data, cal.source)
    if cal.regimes:
        predicted = calibration.predict_piecewise(cal.regimes, sizes, cal.ranks)
    else:
        predicted = link.pipelined_ring_allreduce_s(
            sizes, cal.ranks, cal.usable_gbps * 1e9 / 8, cal.step_latency_us * 1e-6, segments
        )
    return sizes, measured, [float(p) for p in predicted]


def size_label(size_bytes: int) -> str:
    """A message size the way nccl-tests' options write it: 8 B, 64 KiB, 8 GiB."""
    value, unit = float(size_bytes), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:,.4g} {unit}"


def regime_span(regime: dict[str, Any]) -> str:
    """A stored regime's measured sizes: 8 B – 16 KiB."""
    return f"{size_label(int(regime['min_bytes']))} – {size_label(int(regime['max_bytes']))}"


def point_groups(cal: LinkCalibration | ClusterCalibration, sizes: Sequence[int]) -> list[str]:
    """What to colour each point of a drawing by: the regime that predicts it, else (one ring)
    the source."""
    if not cal.regimes:
        return [cal.get_source_display()] * len(sizes)
    which = calibration.regime_index(cal.regimes, sizes)
    return [f"regime {int(i) + 1}: {regime_span(cal.regimes[int(i)])}" for i in which]


def one_ring(cal: LinkCalibration | ClusterCalibration) -> calibration.Regime | None:
    """The one-regime fit of a piecewise calibration's points (what a single α-β ring would
    have made of them, for comparison); None for a calibration without regimes, or whose points
    the fit now refuses."""
    if not cal.regimes:
        return None
    sizes, measured, _ = _measured(cal.data, cal.source)
    try:
        (ring,) = calibration.piecewise_candidates(sizes, measured, cal.ranks, max_regimes=1)[0]
    except calibration.CalibrationError:  # recorded before the fit's bounds, beyond them
        return None
    return ring


def latest_link_figure(field: str) -> Subquery:
    """``field`` of the latest calibration of the outer query's link (annotate a SiteLink)."""
    newest = LinkCalibration.objects.filter(link=OuterRef("pk")).order_by("-measured_at", "-id")
    return Subquery(newest.values(field)[:1])


def latest_cluster_figure(field: str) -> Subquery:
    """``field`` of the latest calibration of the outer query's cluster (annotate a Cluster)."""
    newest = ClusterCalibration.objects.filter(cluster=OuterRef("pk")).order_by(
        "-measured_at", "-id"
    )
    return Subquery(newest.values(field)[:1])


def latest_link_calibrations(link_ids: Iterable[int]) -> dict[int, LinkCalibration]:
    """The latest calibration (by measured_at, then id) of each given link that has one.

    One query, whatever the number of links or of calibrations each holds.
    """
    newest = LinkCalibration.objects.filter(link=OuterRef("link")).order_by("-measured_at", "-id")
    rows = LinkCalibration.objects.filter(
        link_id__in=list(link_ids), pk=Subquery(newest.values("pk")[:1])
    ).defer("data", "raw")
    return {row.link_id: row for row in rows}


def latest_cluster_calibrations(cluster_ids: Iterable[int]) -> dict[int, ClusterCalibration]:
    """The latest calibration (by measured_at, then id) of each given cluster that has one."""
    newest = ClusterCalibration.objects.filter(cluster=OuterRef("cluster")).order_by(
        "-measured_at", "-id"
    )
    rows = ClusterCalibration.objects.filter(
        cluster_id__in=list(cluster_ids), pk=Subquery(newest.values("pk")[:1])
    ).defer("data", "raw")
    return {row.cluster_id: row for row in rows}
