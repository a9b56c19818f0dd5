"""Read the text that nccl-tests' ``all_reduce_perf`` prints.

The benchmark prints a ``#``-commented preamble (options, devices), a two-line header, one data
line per message size and a ``#`` footer (``Avg bus bandwidth``). Two header layouts are in use:

* current releases::

    #       size         count      type   redop    root     time   algbw   busbw #wrong ...
    #        (B)    (elements)                               (us)  (GB/s)  (GB/s)        ...
             8             2     float     sum      -1    37.26    0.00    0.00      0 ...

* older releases (no ``root`` column, a float ``error`` instead of the ``#wrong`` count)::

    #       size         count      type   redop     time   algbw   busbw  error ...

Each data line holds an out-of-place group (time, algbw, busbw, wrong/error) followed by an
in-place group. ``#wrong`` may read ``N/A`` when validation is off (``-c 0``). Lines printed by
NCCL itself (``host:pid:tid [0] NCCL INFO ...``) or MPI may be interleaved; they are skipped.
Times are microseconds, bandwidths GB/s (10⁹ bytes per second), as nccl-tests prints them.

Pure: standard library only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "MAX_SIZE_BYTES",
    "MAX_TIME_US",
    "MIN_SIZE_BYTES",
    "MIN_TIME_US",
    "AllReduceRow",
    "NcclParseError",
    "Timing",
    "parse_all_reduce_perf",
    "parse_avg_bus_bandwidth",
    "parse_ranks",
]


# What one measured all-reduce can be: a message of 1 B to 2^50 B (a pebibyte, far beyond any
# accelerator's memory) timed from 10^-3 µs (1 ns) to 10^9 µs (about 17 minutes). The parser
# refuses a line beyond the upper bounds (no run prints one; 0-byte rows, which time no transfer,
# are read); the fit (`calibration.fit_piecewise`) needs every point within both.
MIN_SIZE_BYTES = 1
MAX_SIZE_BYTES = 2**50
MIN_TIME_US = 1e-3
MAX_TIME_US = 1e9


class NcclParseError(ValueError):
    """The text holds no ``all_reduce_perf`` result table, or a data line is malformed."""


@dataclass(frozen=True, slots=True)
class Timing:
    """One placement's figures for one message size."""

    time_us: float
    algbw_gbps: float  # GB/s, size / time
    busbw_gbps: float  # GB/s, algbw · 2(n-1)/n for all-reduce
    wrong: float | None  # #wrong count (or the old max error); None when not validated


@dataclass(frozen=True, slots=True)
class AllReduceRow:
    """One data line: a message size with its out-of-place and (if printed) in-place timing."""

    size_bytes: int
    count: int
    dtype: str
    redop: str
    root: int | None
    out_of_place: Timing
    in_place: Timing | None

    # The out-of-place figures are the ones nccl-tests' own summary uses; exposed flat for ease.
    @property
    def time_us(self) -> float:
        return self.out_of_place.time_us

    @property
    def algbw_gbps(self) -> float:
        return self.out_of_place.algbw_gbps

    @property
    def busbw_gbps(self) -> float:
        return self.out_of_place.busbw_gbps

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form (stored with a calibration)."""

        def timing(t: Timing | None) -> dict[str, float | None] | None:
            if t is None:
                return None
            return {
                "time_us": t.time_us,
                "algbw_gbps": t.algbw_gbps,
                "busbw_gbps": t.busbw_gbps,
                "wrong": t.wrong,
            }

        return {
            "size_bytes": self.size_bytes,
            "count": self.count,
            "dtype": self.dtype,
            "redop": self.redop,
            "root": self.root,
            "out_of_place": timing(self.out_of_place),
            "in_place": timing(self.in_place),
        }


_HEADER = re.compile(r"^#\s*size\s+count\s+type\s+redop\b(?P<rest>.*)$")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(?P<value>\S+)")
# "Using devices" lines, current (`# Rank 0 Group 0 Pid 1 on host device 0 ...`) and older
# (`# Rank 0 Pid 1 on host device 0 ...`) layouts.
_DEVICE = re.compile(r"^#\s*Rank\s+(?P<rank>\d+)\s.*\bon\s+\S+\s+device\s+\d+")


def _number(token: str, line_no: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise NcclParseError(f"line {line_no}: {token!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise NcclParseError(f"line {line_no}: {token!r} is not a finite non-negative number")
    return value


def _wrong(token: str, line_no: int) -> float | None:
    if token.upper() == "N/A":
        return None
    return _number(token, line_no)


def _size(token: str, line_no: int) -> int:
    # By length first: int() refuses thousands of digits (and "²" passes isdigit()).
    try:
        size = int(token) if len(token) <= len(str(MAX_SIZE_BYTES)) else MAX_SIZE_BYTES + 1
    except ValueError:
        raise NcclParseError(f"line {line_no}: size {token!r} is not an integer") from None
    if size > MAX_SIZE_BYTES:
        shown = token if len(token) <= 20 else f"{token[:17]}..."
        raise NcclParseError(f"line {line_no}: size {shown} B is above {MAX_SIZE_BYTES:,} B")
    return size


def _time(token: str, line_no: int) -> float:
    value = _number(token, line_no)
    if value > MAX_TIME_US:
        raise NcclParseError(f"line {line_no}: time {token} µs is above {MAX_TIME_US:g} µs")
    return value


def _timing(tokens: list[str], line_no: int) -> Timing:
    return Timing(
        time_us=_time(tokens[0], line_no),
        algbw_gbps=_number(tokens[1], line_no),
        busbw_gbps=_number(tokens[2], line_no),
        wrong=_wrong(tokens[3], line_no),
    )


def parse_all_reduce_perf(text: str) -> list[AllReduceRow]:
    """Every result line of an ``all_reduce_perf`` run, in printed order.

    Raises :class:`NcclParseError` when no result table is found, when a line after the header
    that starts with a size is malformed or beyond :data:`MAX_SIZE_BYTES` or
    :data:`MAX_TIME_US`, or when the table has no data line. Output of several
    runs concatenated yields the rows of all of them.
    """
    rows: list[AllReduceRow] = []
    has_root: bool | None = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        header = _HEADER.match(line)
        if header:
            has_root = header.group("rest").split()[:1] == ["root"]
            continue
        if line.startswith("#") or has_root is None:
            continue
        tokens = line.split()
        if not tokens[0].isdigit():
            continue  # NCCL INFO / MPI chatter between result lines
        fixed = 5 if has_root else 4
        if len(tokens) not in (fixed + 4, fixed + 8):
            raise NcclParseError(
                f"line {line_no}: expected {fixed + 8} columns (or {fixed + 4}), got {len(tokens)}"
            )
        try:
            count = int(tokens[1])
            root = int(tokens[4]) if has_root else None
        except ValueError:
            raise NcclParseError(f"line {line_no}: count/root are not integers") from None
        rows.append(
            AllReduceRow(
                size_bytes=_size(tokens[0], line_no),
                count=count,
                dtype=tokens[2],
                redop=tokens[3],
                root=root,
                out_of_place=_timing(tokens[fixed : fixed + 4], line_no),
                in_place=(
                    _timing(tokens[fixed + 4 : fixed + 8], line_no)
                    if len(tokens) == fixed + 8
                    else None
                ),
            )
        )
    if has_root is None:
        raise NcclParseError("no all_reduce_perf result header (# size count type redop ...)")
    if not rows:
        raise NcclParseError("the all_reduce_perf table has no data line")
    return rows


def parse_avg_bus_bandwidth(text: str) -> float | None:
    """The footer's ``# Avg bus bandwidth`` in GB/s (the last one if several runs), or None."""
    value: float | None = None
    for raw in text.splitlines():
        m = _AVG.match(raw.strip())
        if m:
            try:
                value = float(m.group("value"))
            except ValueError:
                continue
    return value


def parse_ranks(text: str) -> int:
    """How many ranks the run used: the distinct ranks of its "Using devices" lines (0 when the
    preamble is missing)."""
    ranks = {m.group("rank") for raw in text.splitlines() if (m := _DEVICE.match(raw.strip()))}
    return len(ranks)
