"""Server-side charts: matplotlib figures rendered to inline SVG that read in light and dark.

Text and axes are drawn in `currentColor`, so an SVG placed inline in a page takes the page's
foreground colour (the admin's light or dark theme); series use a palette that keeps contrast
on both backgrounds. No JavaScript, no CDN.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.rcsetup import cycler

from common.svg import PALETTE as PALETTE  # one palette for both ways of drawing charts

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Placeholder colour for anything that must follow the page's text colour.
_INK = "#010203"

STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # real <text>, selectable and themable
    "font.size": 10,
    "font.family": "sans-serif",
    "text.color": _INK,
    "axes.labelcolor": _INK,
    "axes.edgecolor": _INK,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "axes.facecolor": "none",
    "figure.facecolor": "none",
    "savefig.facecolor": "none",
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#8C8C8C",
    "grid.alpha": 0.25,
    "legend.frameon": False,
}


@contextmanager
def figure(width_in: float = 8.0, height_in: float = 3.6) -> Iterator[Figure]:
    """A figure in the house style; closed afterwards so memory does not grow per request."""
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(width_in, height_in))
        try:
            yield fig
        finally:
            plt.close(fig)


def to_svg(fig: Figure, *, title: str = "") -> str:
    """The figure as an inline `<svg>` element whose ink follows the page's text colour."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype for inline use
    svg = svg.replace(_INK, "currentColor")
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r"<svg \1", svg, count=1)
    label = (
        f'role="img" aria-label="{_escape(title)}" class="chart" ' if title else 'class="chart" '
    )
    return svg.replace("<svg ", f"<svg {label}", 1)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def money_short(value: float, currency: str = "USD") -> str:
    """A money amount the short way charts write it: `$350M`, `$1.25B`, `-$12k`, `$0`."""
    symbol = "$" if currency == "USD" else ""
    suffix = "" if currency == "USD" else f" {currency}"
    sign = "-" if value < 0 else ""
    size = abs(value)
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= scale:
            return f"{sign}{symbol}{size / scale:,.3g}{unit}{suffix}"
    return f"{sign}{symbol}{size:,.0f}{suffix}"


def money_ticks(axis: Any, currency: str = "USD") -> None:
    """Label an axis of money amounts the way the pages write money (`money_short`)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: money_short(value, currency)))
