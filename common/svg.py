"""Charts built as inline SVG element by element, for pages that must draw them cheaply.

The operator dashboard draws its charts again on the first visit after any fleet or lease
change; a matplotlib figure (`common/plots.py`) costs about 100 ms to draw, a drawing built
here a few milliseconds. The conventions are the same: text and axes in `currentColor`, so an
inline chart takes the page's foreground colour (light or dark theme); series in `PALETTE`;
`role="img"` with the title as `aria-label`; a `viewBox`, so the drawing scales to its box.
Every text and attribute value is escaped.

Text is not measured (there are no font metrics on the server): `text_width` estimates it from
the number of characters, on the generous side, to reserve room for labels.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

# Colour-blind-safe, mid-tone: readable on white and on the admin's dark background.
PALETTE = ["#4C9BE8", "#E8A33D", "#5BBF8A", "#D9616A", "#9C7FE0", "#3FB8C4", "#C9A227", "#8C8C8C"]

FONT = 12.0  # viewBox units: a chart about 800 units wide fills a 60rem box at about 14 px
SMALL = 11.0
# Average advance of a character in the sans-serif faces browsers pick, as a share of the font
# size: DejaVu Sans, the widest common one, takes 0.48 to 0.58 on labels like these; capitals
# take more.
_EM_PER_CHAR = 0.62


def num(value: float) -> str:
    """A coordinate as SVG writes it: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def text_width(text: str, size: float = FONT) -> float:
    """The estimated width of `text` at `size` (see the module docstring)."""
    return len(text) * size * _EM_PER_CHAR


def count_ticks(high: float, length: float, size: float = SMALL, most: int = 8) -> list[int]:
    """Ticks for an axis of counts from 0 to at least `high`, `length` units long.

    The step is the smallest of 1, 2, 5, 10, 20, 25, 50, 100, 200, 250… that gives at most
    `most` intervals and leaves room between the labels (written with thousands separators);
    the last tick is the first multiple of the step at or above `high`, so the axis ends on a
    tick. Where even two labels do not fit, the axis has just those two.
    """
    high = max(high, 1)
    magnitude = 1
    while True:
        for multiple in (1, 2, 5) if magnitude == 1 else (1, 2, 2.5, 5):
            step = int(multiple * magnitude)
            intervals = math.ceil(high / step)
            widest = text_width(f"{intervals * step:,}", size)
            fits = intervals <= most and widest * 1.3 <= length / intervals
            if fits or intervals == 1:  # one interval: its two labels are all there is
                return list(range(0, intervals * step + 1, step))
        magnitude *= 10


def month_ticks(
    start: dt.datetime, end: dt.datetime, length: float, size: float = SMALL
) -> list[dt.datetime]:
    """The first days of the months in [`start`, `end`] (same time zone as `start`), every
    month or every few months so that the `YYYY-MM-DD` labels keep room between them."""
    firsts = []
    year, month = start.year, start.month
    while True:
        first = start.replace(
            year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0
        )
        if first > end:
            break
        if first >= start:
            firsts.append(first)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    room = length / max((end - start).days, 1) * 28  # the least space a month takes
    every = max(1, math.ceil(text_width("2026-01-01", size) * 1.2 / room))
    return firsts[::every]


class Drawing:
    """An SVG under construction: elements in drawing order, in viewBox units (y downwards).

    Keyword arguments become attributes, with `_` written as `-` (`text_anchor`); `tip` adds a
    `<title>` child, which browsers show on hover.
    """

    def __init__(self, width: float) -> None:
        self.width = width
        self._parts: list[str] = []

    def element(self, tag: str, text: str = "", *, tip: str = "", **attrs: str | float) -> None:
        self._add(tag, attrs, text, tip)

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: str | float) -> None:
        self._add(
            "line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "stroke": "currentColor", **attrs}
        )

    def text(self, x: float, y: float, text: str, **attrs: str | float) -> None:
        """Text whose middle sits at height `y` (anchored at `x` by `text_anchor`)."""
        self._add("text", {"x": x, "y": y, "dy": "0.35em", "fill": "currentColor", **attrs}, text)

    def _add(self, tag: str, attrs: dict[str, str | float], text: str = "", tip: str = "") -> None:
        pairs = "".join(
            f' {name.replace("_", "-")}="{_value(value)}"' for name, value in attrs.items()
        )
        inner = (f"<title>{escape(tip)}</title>" if tip else "") + escape(text)
        self._parts.append(f"<{tag}{pairs}>{inner}</{tag}>" if inner else f"<{tag}{pairs}/>")

    def marker(
        self, shape: str, x: float, y: float, size: float, color: str, *, tip: str = ""
    ) -> None:
        """A `shape` about `size` across, centred on (`x`, `y`): `square`, `circle`, `triangle`,
        `cross`, or `bar` (a legend swatch for bars)."""
        r = size / 2
        if shape == "square":
            self.element("rect", tip=tip, x=x - r, y=y - r, width=size, height=size, fill=color)
        elif shape == "bar":
            self.element(
                "rect", tip=tip, x=x - r, y=y - r * 0.7, width=size, height=r * 1.4, fill=color
            )
        elif shape == "circle":
            self.element("circle", tip=tip, cx=x, cy=y, r=r, fill=color)
        elif shape == "triangle":
            points = f"{num(x)},{num(y - r)} {num(x + r)},{num(y + r)} {num(x - r)},{num(y + r)}"
            self.element("polygon", tip=tip, points=points, fill=color)
        elif shape == "cross":
            d = (
                f"M{num(x - r)} {num(y - r)}L{num(x + r)} {num(y + r)}"
                f"M{num(x - r)} {num(y + r)}L{num(x + r)} {num(y - r)}"
            )
            self.element("path", tip=tip, d=d, stroke=color, stroke_width=size / 3.5)
        else:
            raise ValueError(f"unknown marker shape {shape!r}")

    def legend(
        self, entries: list[tuple[str, str, str]], x: float, y: float, width: float
    ) -> float:
        """`(label, shape, colour)` entries from (`x`, `y`) in as many columns as fit in
        `width` (each column as wide as its widest entry); returns the height taken."""
        swatch, gap, pitch = SMALL, SMALL * 1.8, SMALL * 1.8
        spans = [swatch + 5 + text_width(label, SMALL) for label, _, _ in entries]
        columns = len(entries)
        while columns > 1 and sum(_widths(spans, columns)) + gap * (columns - 1) > width:
            columns -= 1
        lefts = [x + sum(_widths(spans, columns)[:c]) + gap * c for c in range(columns)]
        for i, (label, shape, color) in enumerate(entries):
            at, middle = lefts[i % columns], y + pitch * (i // columns + 0.5)
            self.marker(shape, at + swatch / 2, middle, swatch, color)
            self.text(at + swatch + 5, middle, label, font_size=SMALL)
        return pitch * math.ceil(len(entries) / max(columns, 1))

    def render(self, height: float, *, title: str) -> str:
        """The `<svg>` element, `width` by `height` units, labelled `title` for screen readers."""
        return (
            f'<svg role="img" aria-label="{escape(title)}" class="chart" '
            f'viewBox="0 0 {num(self.width)} {num(height)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-size="{num(FONT)}">'
            + "".join(self._parts)
            + "</svg>"
        )


def _widths(spans: list[float], columns: int) -> list[float]:
    """The width of each column when `spans` are laid out row by row in `columns` columns."""
    return [max(spans[c::columns]) for c in range(columns)]


def _value(value: str | float) -> str:
    return escape(value) if isinstance(value, str) else num(value)
