"""Scenario: the model's input document (``"schema": "landlord.scenario/1"``).

Frozen dataclasses with units in field names, parsed from and written back to JSON-shaped dicts.
Every validation failure raises :class:`ScenarioError` naming the JSON path of the offending
field (``$.pools[2].gpus``). SCHEMA.md documents every field, its unit and its default.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypeVar

from .catalog import CATALOG, Accelerator

SCENARIO_SCHEMA = "landlord.scenario/1"

SyncMode = Literal["flat_ring", "hierarchical", "diloco"]
SplitMode = Literal["equal", "proportional"]
SYNC_MODES: tuple[SyncMode, ...] = ("flat_ring", "hierarchical", "diloco")
SPLIT_MODES: tuple[SplitMode, ...] = ("equal", "proportional")


class ScenarioError(ValueError):
    """An invalid scenario; ``path`` is the JSON path of the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# Bounds on any document the model reads (SCHEMA.md, "Input bounds"). A scenario is a few
# levels deep and a few hundred values long; these limits are far above any real one and far
# below what could exhaust the interpreter (recursion) or overflow float64.
MAX_DEPTH = 16
MAX_NODES = 100_000
MAX_TEXT_CHARS = 10_000_000
MAX_STRING_CHARS = 10_000
# Integers beyond this magnitude are refused before any float conversion (10**400 would raise
# OverflowError in float()); every physical input of the model is far below 1e30.
MAX_ABS_NUMBER = 1e30


@dataclass(frozen=True)
class Bound:
    """The range the parser accepts for one numeric field (every number is also finite with
    |x| ≤ :data:`MAX_ABS_NUMBER`). Shared by the scenario parser and the CLI's ``--sweep``."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    integer: bool = False

    def check(self, value: Any, path: str) -> Any:
        """``value`` as a float (an int for an integer field), or a ScenarioError at ``path``."""
        number = _number(
            value,
            path,
            low=self.low,
            low_open=self.low_open,
            high=self.high,
            high_open=self.high_open,
            integer=self.integer,
        )
        return int(number) if self.integer else number


POSITIVE = Bound(low=0.0, low_open=True)  # > 0
NON_NEGATIVE = Bound(low=0.0)  # ≥ 0
FRACTION = Bound(low=0.0, low_open=True, high=1.0)  # (0, 1]
UNIT_INTERVAL = Bound(low=0.0, high=1.0)  # [0, 1]
BELOW_ONE = Bound(low=0.0, high=1.0, high_open=True)  # [0, 1)
AT_LEAST_ONE = Bound(low=1.0)  # ≥ 1
COUNT = Bound(low=1.0, integer=True)  # integer ≥ 1
COUNT_OR_ZERO = Bound(low=0.0, integer=True)  # integer ≥ 0

# The bound of every numeric field, by section (SCHEMA.md's "rule" columns). The parser reads
# each field through its entry; ``--sweep`` (sweep.py) checks its values against the entry of the
# field it stands for.
FIELD_BOUNDS: Mapping[str, Mapping[str, Bound]] = {
    "workload": {
        "params": POSITIVE,
        "tokens_per_step": POSITIVE,
        "flops_per_step": POSITIVE,
        "bytes_per_grad": POSITIVE,
        "grad_bytes": POSITIVE,
        "tensor_parallel": COUNT,
        "pipeline_parallel": COUNT,
        "microbatches": COUNT,
        "pipeline_interleave": COUNT,
        "overlap_s": NON_NEGATIVE,
        "diloco_inner_steps": COUNT,
        "diloco_quality_penalty": BELOW_ONE,
        "memory_fill": FRACTION,
        "stage_imbalance": NON_NEGATIVE,
        "load_imbalance_cv": NON_NEGATIVE,
        "slow_worker_fraction": UNIT_INTERVAL,
        "slow_worker_slowdown": AT_LEAST_ONE,
        "hidden_size": POSITIVE,
    },
    "accelerator": {
        "peak_tflops": POSITIVE,
        "mfu": FRACTION,
        "hbm_gb": POSITIVE,
        "scaleout_gbps": POSITIVE,
        "jitter_cv": NON_NEGATIVE,
        "mtbf_hours": POSITIVE,
        "price_per_gpu_hour_usd": NON_NEGATIVE,
    },
    "pool": {"gpus": COUNT, "fabric_gbps_per_gpu": POSITIVE},
    "link": {
        "bandwidth_gbps": POSITIVE,
        "route_km": NON_NEGATIVE,
        "efficiency": FRACTION,
        "latency_us": NON_NEGATIVE,
        "window_bytes": POSITIVE,
        "streams": COUNT,
        "rendezvous_rtts": NON_NEGATIVE,
        "handshake_rtts": COUNT_OR_ZERO,
        "loss_rate": BELOW_ONE,
        "mss_bytes": POSITIVE,
        "step_latency_us": POSITIVE,
        "usable_gbps": POSITIVE,
    },
    "economics": {
        "reference_price_per_gpu_hour_usd": POSITIVE,
        "reference_mfu": FRACTION,
        "scarcity_multiplier": NON_NEGATIVE,
        "rent_per_month_usd": NON_NEGATIVE,
        "horizon_days": NON_NEGATIVE,
        "restart_cost_s": NON_NEGATIVE,
    },
    "portfolio": {"share": FRACTION},
}


def check_bounds(data: Any, path: str = "$") -> None:
    """Refuse a JSON-shaped value that is too deep, too large, or holds a non-finite or huge
    number, with a :class:`ScenarioError` naming the path. Iterative (no recursion), so a
    document nested a million levels deep is refused as cleanly as one nested 17 levels."""
    stack: list[tuple[Any, str, int]] = [(data, path, 0)]
    nodes = 0
    while stack:
        value, where, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ScenarioError(path, f"document too large (more than {MAX_NODES:,} values)")
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ScenarioError(where, f"nested too deeply (more than {MAX_DEPTH} levels)")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise ScenarioError(where, "object keys must be strings")
                    if len(key) > MAX_STRING_CHARS:
                        raise ScenarioError(where, "object key too long")
                    stack.append((item, f"{where}.{key[:64]}", depth + 1))
            else:
                stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_ABS_NUMBER:
                raise ScenarioError(where, f"number out of range (|x| > {MAX_ABS_NUMBER:g})")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ScenarioError(where, f"must be finite, got {_show(value)}")
            if abs(value) > MAX_ABS_NUMBER:
                raise ScenarioError(where, f"number out of range (|x| > {MAX_ABS_NUMBER:g})")
        elif isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise ScenarioError(where, f"string too long (more than {MAX_STRING_CHARS:,})")
        else:
            raise ScenarioError(where, f"not a JSON value ({type(value).__name__})")


def _reject_constant(name: str) -> Any:
    raise ScenarioError("$", f"{name} is not a JSON number (must be finite)")


def load_json(text: str | bytes) -> Any:
    """Parse JSON text under the bounds of :func:`check_bounds`, refusing ``NaN``/``Infinity``.

    Every failure is a :class:`ScenarioError` (never a RecursionError, OverflowError or
    ValueError from the parser), so front ends can print it and exit cleanly.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise ScenarioError("$", f"document too large (more than {MAX_TEXT_CHARS:,} characters)")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScenarioError("$", f"not UTF-8 text: {exc.reason}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ScenarioError("$", f"invalid JSON: {exc}") from None
    except ScenarioError:
        raise
    except RecursionError:
        raise ScenarioError("$", f"nested too deeply (more than {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ScenarioError("$", f"invalid JSON: {exc}") from None
    check_bounds(data)
    return data


@dataclass(frozen=True)
class Workload:
    """The internal training job (one synchronous step of a dense transformer).

    params: parameters (count). tokens_per_step: global batch, tokens. flops_per_step: training
    FLOP per step (None → 6 · params · tokens). bytes_per_grad: bytes per gradient element.
    grad_bytes: bytes all-reduced per step (None → params · bytes_per_grad).
    tensor_parallel, pipeline_parallel: GPUs per data-parallel replica = TP · PP.
    microbatches: per replica per step. pipeline_interleave: virtual stages per rank.
    overlap_s: compute that can hide the data-parallel sync, s (None → the last micro-batch's
    backward pass, 2/3 of a micro-batch stage time). sync: flat_ring | hierarchical | diloco.
    diloco_inner_steps: H, inner steps per outer sync. diloco_quality_penalty: fraction of
    useful progress lost to DiLoCo, 0–1. batch_split: equal | proportional.
    memory_fill: share of the smallest-HBM pool's memory the equal split's micro-batches fill,
    (0, 1]; a pool may take up to ``hbm_gb / min hbm_gb / memory_fill`` times the equal share.
    stage_imbalance: the slowest pipeline stage's extra time over the others, fraction ≥ 0.
    load_imbalance_cv: coefficient of variation of the work each data-parallel replica gets
    per step (e.g. uneven sequence lengths), ≥ 0. slow_worker_fraction: share of workers that
    are persistently slow, [0, 1]. slow_worker_slowdown: how many times slower they run, ≥ 1.
    hidden_size: the model's hidden dimension (None → kernels as efficient as the catalog's
    reference width); with TP it sets the per-GPU GEMM width that scales kernel MFU.
    """

    params: float
    tokens_per_step: float
    flops_per_step: float | None = None
    bytes_per_grad: float = 2.0
    grad_bytes: float | None = None
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    microbatches: int = 1
    pipeline_interleave: int = 1
    overlap_s: float | None = None
    sync: SyncMode = "hierarchical"
    diloco_inner_steps: int = 100
    diloco_quality_penalty: float = 0.0
    batch_split: SplitMode = "equal"
    memory_fill: float = 0.5
    stage_imbalance: float = 0.0
    load_imbalance_cv: float = 0.0
    slow_worker_fraction: float = 0.0
    slow_worker_slowdown: float = 1.0
    hidden_size: float | None = None

    @property
    def step_flops(self) -> float:
        """Training FLOP per step: given, or ``6 · params · tokens`` (docs/model.md, "Compute")."""
        if self.flops_per_step is not None:
            return self.flops_per_step
        return 6.0 * self.params * self.tokens_per_step

    @property
    def step_grad_bytes(self) -> float:
        """Bytes all-reduced per data-parallel sync: given, or ``params · bytes_per_grad``."""
        if self.grad_bytes is not None:
            return self.grad_bytes
        return self.params * self.bytes_per_grad


@dataclass(frozen=True)
class Pool:
    """GPUs of one accelerator model at one site (a cluster).

    fabric_gbps_per_gpu: intra-site bus bandwidth per GPU, Gbit/s (capped by the accelerator's
    scaleout_gbps). leased: the pool is under lease (the capacity a reclaim would take back).
    """

    site: str
    accelerator: str
    gpus: int
    fabric_gbps_per_gpu: float
    name: str = ""
    leased: bool = False

    @property
    def label(self) -> str:
        """Display name: ``name`` or ``site/accelerator``."""
        return self.name or f"{self.site}/{self.accelerator}"


@dataclass(frozen=True)
class Link:
    """An inter-site link (full duplex).

    bandwidth_gbps: line rate, Gbit/s. route_km: fiber route, km. efficiency: usable share of
    the line rate, 0–1. latency_us: equipment latency one way, µs. window_bytes: bytes a flow
    may have in flight (None → no window cap). streams: TCP flows per collective connection
    (the model multiplies them by the connections the parallelism puts on the hop; model.py).
    rendezvous_rtts: round
    trips a collective step waits before sending, on top of the one-way delay (real-valued; a
    receiver-ready rendezvous is 0.5: one round trip per step in all; the legacy integer input
    ``handshake_rtts`` is read into it). loss_rate: packet loss probability [0, 1), bounds a TCP
    flow by Mathis' law with ``mss_bytes`` (bytes per segment). step_latency_us / usable_gbps:
    measured per-step latency (µs) and usable throughput (Gbit/s) of a calibration; when set
    they replace the values derived from the fields above.
    """

    a: str
    b: str
    bandwidth_gbps: float
    route_km: float
    efficiency: float = 0.9
    latency_us: float = 0.0
    window_bytes: float | None = None
    streams: int = 1
    rendezvous_rtts: float = 0.0
    loss_rate: float = 0.0
    mss_bytes: float = 1448.0
    step_latency_us: float | None = None
    usable_gbps: float | None = None


@dataclass(frozen=True)
class Economics:
    """How throughput becomes money.

    reference_accelerator: catalog or scenario accelerator the value is priced against.
    reference_price_per_gpu_hour_usd / reference_mfu: None → that accelerator's price / MFU.
    scarcity_multiplier: how much more than market the operator's own compute is worth.
    rent_per_month_usd: rent of the leased capacity, USD/month. horizon_days: the window
    compared, days. restart_cost_s: wall time lost per interruption, s.
    """

    reference_accelerator: str = "H100"
    reference_price_per_gpu_hour_usd: float | None = None
    reference_mfu: float | None = None
    scarcity_multiplier: float = 1.0
    rent_per_month_usd: float = 0.0
    horizon_days: float = 90.0
    restart_cost_s: float = 600.0


@dataclass(frozen=True)
class PortfolioEntry:
    """One internal workload of a portfolio and the share of the horizon it would use.

    name: label. share: fraction of the horizon, (0, 1]. workload: the full workload (the
    scenario's own workload with the entry's overrides applied).
    """

    name: str
    share: float
    workload: Workload


@dataclass(frozen=True)
class Scenario:
    """A complete model input: workload, accelerators, pools, links and economics.

    ``accelerators`` holds every model the pools or the economics name, resolved (catalog
    defaults merged with the document's overrides).
    """

    workload: Workload
    accelerators: Mapping[str, Accelerator]
    pools: tuple[Pool, ...]
    links: tuple[Link, ...] = ()
    economics: Economics = field(default_factory=Economics)
    name: str = ""
    portfolio: tuple[PortfolioEntry, ...] = ()

    @property
    def sites(self) -> tuple[str, ...]:
        """Sites in order of first appearance among the pools."""
        seen: dict[str, None] = {}
        for pool in self.pools:
            seen.setdefault(pool.site, None)
        return tuple(seen)

    @property
    def reference(self) -> Accelerator:
        """The reference accelerator of the valuation."""
        return self.accelerators[self.economics.reference_accelerator]

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """Parse and validate a scenario document; raise ScenarioError with the JSON path.

        The document is first checked against the input bounds (:func:`check_bounds`)."""
        check_bounds(data)
        return _parse_scenario(data)

    def to_dict(self) -> dict[str, Any]:
        """The scenario as a JSON-ready document that :meth:`from_dict` reads back unchanged."""
        return {
            "schema": SCENARIO_SCHEMA,
            "name": self.name,
            "workload": _dc_dict(self.workload),
            "accelerators": {k: _dc_dict(v) for k, v in self.accelerators.items()},
            "pools": [_dc_dict(p) for p in self.pools],
            "links": [_dc_dict(lk) for lk in self.links],
            "economics": _dc_dict(self.economics),
            **(
                {
                    "portfolio": [
                        {"name": e.name, "share": e.share, "workload": _dc_dict(e.workload)}
                        for e in self.portfolio
                    ]
                }
                if self.portfolio
                else {}
            ),
        }

    def with_workload(self, workload: Workload) -> Scenario:
        """The same capacity and economics with another workload (no portfolio)."""
        return replace(self, workload=workload, portfolio=())


def _dc_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# --- parsing -------------------------------------------------------------------------------

T = TypeVar("T")
_MISSING = object()


def _show(value: Any) -> str:
    """A short repr for error messages (a refused value may be a long list)."""
    text = reprlib.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(
    value: Any,
    path: str,
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    if integer:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScenarioError(path, f"must be an integer, got {_show(value)}")
    elif not _is_number(value):
        raise ScenarioError(path, f"must be a number, got {_show(value)}")
    # Compared before float(): an integer such as 10**400 would overflow the conversion.
    if isinstance(value, int) and abs(value) > MAX_ABS_NUMBER:
        raise ScenarioError(path, f"number out of range (|x| > {MAX_ABS_NUMBER:g})")
    number = float(value)
    if not math.isfinite(number):
        raise ScenarioError(path, f"must be finite, got {_show(value)}")
    if abs(number) > MAX_ABS_NUMBER:
        raise ScenarioError(path, f"number out of range (|x| > {MAX_ABS_NUMBER:g})")
    if low is not None and (number < low or (low_open and number == low)):
        op = ">" if low_open else ">="
        raise ScenarioError(path, f"must be {op} {low:g}, got {_show(value)}")
    if high is not None and (number > high or (high_open and number == high)):
        op = "<" if high_open else "<="
        raise ScenarioError(path, f"must be {op} {high:g}, got {_show(value)}")
    return number


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScenarioError(path, f"must be a non-empty string, got {_show(value)}")
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ScenarioError(path, f"must be one of {', '.join(choices)}, got {_show(value)}")
    return str(value)


def _object(value: Any, path: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(path, f"must be an object, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise ScenarioError(f"{path}.{key}", "unknown field")
    for key in sorted(required):
        if key not in value:
            raise ScenarioError(f"{path}.{key}", "required field missing")
    return value


def _get(
    obj: dict[str, Any], key: str, path: str, conv: Callable[[Any, str], T], default: Any
) -> Any:
    """Convert obj[key] with conv, or return default when absent (or null, if default is None)."""
    if key not in obj or (obj[key] is None and default is None):
        return default
    return conv(obj[key], f"{path}.{key}")


def _field(obj: dict[str, Any], section: str, key: str, path: str, default: Any = _MISSING) -> Any:
    """obj[key] checked against ``FIELD_BOUNDS[section][key]``; required without a default."""
    check = FIELD_BOUNDS[section][key].check
    if default is _MISSING:
        return check(obj[key], f"{path}.{key}")
    return _get(obj, key, path, check, default)


_WORKLOAD_FIELDS = {f.name for f in fields(Workload)}
_WORKLOAD_REQUIRED = {"params", "tokens_per_step"}
_ACCEL_FIELDS = {f.name for f in fields(Accelerator)}
_POOL_FIELDS = {f.name for f in fields(Pool)}
# ``handshake_rtts``: the integer input of schema 1 before real-valued rendezvous_rtts.
_LINK_FIELDS = {f.name for f in fields(Link)} | {"handshake_rtts"}
_ECON_FIELDS = {f.name for f in fields(Economics)}


def _parse_workload(value: Any, path: str) -> Workload:
    obj = _object(value, path, _WORKLOAD_FIELDS, _WORKLOAD_REQUIRED)
    d = Workload(params=1.0, tokens_per_step=1.0)
    values: dict[str, Any] = {}
    for f in fields(Workload):
        if f.name in FIELD_BOUNDS["workload"]:
            default = _MISSING if f.name in _WORKLOAD_REQUIRED else getattr(d, f.name)
            values[f.name] = _field(obj, "workload", f.name, path, default)
    return Workload(
        **values,
        sync=_get(obj, "sync", path, lambda v, p: _choice(v, p, SYNC_MODES), d.sync),
        batch_split=_get(
            obj, "batch_split", path, lambda v, p: _choice(v, p, SPLIT_MODES), d.batch_split
        ),
    )


def _parse_accelerator(value: Any, path: str, base: Accelerator | None) -> Accelerator:
    required = set() if base is not None else set(_ACCEL_FIELDS)
    obj = _object(value, path, _ACCEL_FIELDS, required)
    values: dict[str, float] = {}
    for name, bound in FIELD_BOUNDS["accelerator"].items():
        if name in obj:
            values[name] = bound.check(obj[name], f"{path}.{name}")
        else:
            assert base is not None  # guaranteed by `required` above
            values[name] = getattr(base, name)
    return Accelerator(**values)


def _parse_pool(value: Any, path: str, known: Mapping[str, Accelerator]) -> Pool:
    obj = _object(value, path, _POOL_FIELDS, {"site", "accelerator", "gpus", "fabric_gbps_per_gpu"})
    accel = _string(obj["accelerator"], f"{path}.accelerator")
    if accel not in known:
        raise ScenarioError(
            f"{path}.accelerator",
            f"unknown accelerator {accel!r} (not in accelerators nor the catalog: "
            f"{', '.join(sorted(known))})",
        )
    leased = obj.get("leased", False)
    if not isinstance(leased, bool):
        raise ScenarioError(f"{path}.leased", f"must be true or false, got {_show(leased)}")
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise ScenarioError(f"{path}.name", f"must be a string, got {_show(name)}")
    return Pool(
        site=_string(obj["site"], f"{path}.site"),
        accelerator=accel,
        gpus=_field(obj, "pool", "gpus", path),
        fabric_gbps_per_gpu=_field(obj, "pool", "fabric_gbps_per_gpu", path),
        name=name,
        leased=leased,
    )


def _parse_link(value: Any, path: str, sites: tuple[str, ...]) -> Link:
    obj = _object(value, path, _LINK_FIELDS, {"a", "b", "bandwidth_gbps", "route_km"})
    ends = []
    for end in ("a", "b"):
        site = _string(obj[end], f"{path}.{end}")
        if site not in sites:
            raise ScenarioError(
                f"{path}.{end}", f"unknown site {site!r} (no pool there; sites: {', '.join(sites)})"
            )
        ends.append(site)
    if ends[0] == ends[1]:
        raise ScenarioError(f"{path}.b", "a link must join two different sites")
    d = Link(a="", b="", bandwidth_gbps=1.0, route_km=0.0)
    return Link(
        a=ends[0],
        b=ends[1],
        bandwidth_gbps=_field(obj, "link", "bandwidth_gbps", path),
        route_km=_field(obj, "link", "route_km", path),
        efficiency=_field(obj, "link", "efficiency", path, d.efficiency),
        latency_us=_field(obj, "link", "latency_us", path, d.latency_us),
        window_bytes=_field(obj, "link", "window_bytes", path, None),
        streams=_field(obj, "link", "streams", path, d.streams),
        rendezvous_rtts=_rendezvous_rtts(obj, path, d.rendezvous_rtts),
        loss_rate=_field(obj, "link", "loss_rate", path, d.loss_rate),
        mss_bytes=_field(obj, "link", "mss_bytes", path, d.mss_bytes),
        step_latency_us=_field(obj, "link", "step_latency_us", path, None),
        usable_gbps=_field(obj, "link", "usable_gbps", path, None),
    )


def _rendezvous_rtts(obj: dict[str, Any], path: str, default: float) -> float:
    """``rendezvous_rtts`` (a number ≥ 0), or the legacy integer ``handshake_rtts``."""
    value = _field(obj, "link", "rendezvous_rtts", path, None)
    legacy = _field(obj, "link", "handshake_rtts", path, None)
    if value is not None and legacy is not None and float(legacy) != value:
        raise ScenarioError(
            f"{path}.handshake_rtts", "contradicts rendezvous_rtts (give only rendezvous_rtts)"
        )
    if value is not None:
        return float(value)
    return float(legacy) if legacy is not None else default


def _parse_economics(value: Any, path: str, known: Mapping[str, Accelerator]) -> Economics:
    obj = _object(value, path, _ECON_FIELDS, set())
    d = Economics()
    ref = _get(obj, "reference_accelerator", path, _string, d.reference_accelerator)
    if ref not in known:
        raise ScenarioError(f"{path}.reference_accelerator", f"unknown accelerator {ref!r}")
    return Economics(
        reference_accelerator=ref,
        reference_price_per_gpu_hour_usd=_field(
            obj, "economics", "reference_price_per_gpu_hour_usd", path, None
        ),
        reference_mfu=_field(obj, "economics", "reference_mfu", path, None),
        scarcity_multiplier=_field(
            obj, "economics", "scarcity_multiplier", path, d.scarcity_multiplier
        ),
        rent_per_month_usd=_field(
            obj, "economics", "rent_per_month_usd", path, d.rent_per_month_usd
        ),
        horizon_days=_field(obj, "economics", "horizon_days", path, d.horizon_days),
        restart_cost_s=_field(obj, "economics", "restart_cost_s", path, d.restart_cost_s),
    )


def _parse_portfolio(value: Any, base: dict[str, Any]) -> tuple[PortfolioEntry, ...]:
    """``portfolio``: a list of {name, share, workload overrides}; shares sum to at most 1."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise ScenarioError("$.portfolio", "must be a non-empty list of workloads")
    out = []
    for i, item in enumerate(value):
        path = f"$.portfolio[{i}]"
        obj = _object(item, path, {"name", "share", "workload"}, {"share"})
        name = obj.get("name", f"workload {i + 1}")
        if not isinstance(name, str):
            raise ScenarioError(f"{path}.name", f"must be a string, got {_show(name)}")
        share = _field(obj, "portfolio", "share", path)
        overrides = obj.get("workload", {})
        if not isinstance(overrides, dict):
            raise ScenarioError(f"{path}.workload", "must be an object of workload fields")
        workload = _parse_workload({**base, **overrides}, f"{path}.workload")
        out.append(PortfolioEntry(name=name, share=share, workload=workload))
    if sum(e.share for e in out) > 1.0 + 1e-9:
        raise ScenarioError("$.portfolio", "shares must add up to at most 1")
    return tuple(out)


def _parse_scenario(data: Any) -> Scenario:
    root = _object(
        data,
        "$",
        {"schema", "name", "workload", "accelerators", "pools", "links", "economics", "portfolio"},
        {"workload", "pools"},
    )
    schema = root.get("schema", SCENARIO_SCHEMA)
    if schema != SCENARIO_SCHEMA:
        raise ScenarioError("$.schema", f"must be {SCENARIO_SCHEMA!r}, got {_show(schema)}")
    name = root.get("name", "")
    if not isinstance(name, str):
        raise ScenarioError("$.name", f"must be a string, got {_show(name)}")
    workload = _parse_workload(root["workload"], "$.workload")
    portfolio = _parse_portfolio(root.get("portfolio"), root["workload"])

    raw_accels = root.get("accelerators", {})
    if not isinstance(raw_accels, dict):
        raise ScenarioError("$.accelerators", "must be an object of named accelerators")
    known: dict[str, Accelerator] = dict(CATALOG)
    for key, value in raw_accels.items():
        known[key] = _parse_accelerator(value, f"$.accelerators.{key}", CATALOG.get(key))

    raw_pools = root["pools"]
    if not isinstance(raw_pools, list) or not raw_pools:
        raise ScenarioError("$.pools", "must be a non-empty list")
    pools = tuple(_parse_pool(p, f"$.pools[{i}]", known) for i, p in enumerate(raw_pools))
    sites = tuple(dict.fromkeys(p.site for p in pools))

    raw_links = root.get("links", [])
    if not isinstance(raw_links, list):
        raise ScenarioError("$.links", "must be a list")
    links = tuple(_parse_link(lk, f"$.links[{i}]", sites) for i, lk in enumerate(raw_links))
    economics = _parse_economics(root.get("economics", {}), "$.economics", known)

    # Keep only the accelerators in use, in a stable order, so to_dict is self-contained.
    used = [p.accelerator for p in pools] + [economics.reference_accelerator]
    accelerators = {k: known[k] for k in dict.fromkeys(used)}
    return Scenario(
        workload=workload,
        accelerators=accelerators,
        pools=pools,
        links=links,
        economics=economics,
        name=name,
        portfolio=portfolio,
    )
