"""Plot a sweep: value and rent against the swept input, break-even marked.

matplotlib is imported inside the function (Agg backend), so importing the package never
loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .sweep import SweepResult


def plot_sweep(result: SweepResult, path: str | Path, title: str = "") -> Path:
    """Draw internal value and rent (USD) against the swept field into ``path`` (.svg or .png).

    The break-even (where the recommendation flips) is a dashed vertical line. Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    try:
        ax.plot(result.values, result.internal_value_usd / 1e6, label="internal value")
        ax.plot(result.values, result.rent_usd / 1e6, label="rent forgone")
        if result.break_even is not None:
            ax.axvline(
                result.break_even,
                linestyle="--",
                color="black",
                label=f"break-even {result.break_even:,.3g}",
            )
        if result.field == "link_bandwidth_gbps" and result.values.min() > 0:
            ax.set_xscale("log")
        ax.set_xlabel(result.field)
        ax.set_ylabel("USD (millions)")
        ax.set_title(title or f"Reclaim value vs {result.field}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def draw_predicted_vs_measured(
    ax: Any,
    measured_s: Sequence[float],
    predicted_s: Sequence[float],
    groups: Sequence[str],
    title: str = "",
) -> None:
    """Draw predicted against measured times on ``ax`` (log-log, one colour per group).

    The diagonal is a perfect prediction, in the axes' own colour (so a themed figure keeps
    it); the dotted lines are ±15 %.
    """
    import matplotlib

    ink = matplotlib.rcParams["axes.edgecolor"]
    lo = min(min(measured_s), min(predicted_s)) * 0.8
    hi = max(max(measured_s), max(predicted_s)) * 1.25
    ax.plot([lo, hi], [lo, hi], color=ink, linewidth=0.8)
    for k in (0.85, 1.15):
        ax.plot([lo, hi], [lo * k, hi * k], color="gray", linewidth=0.6, linestyle=":")
    for group in dict.fromkeys(groups):
        xs = [m for m, g in zip(measured_s, groups, strict=True) if g == group]
        ys = [p for p, g in zip(predicted_s, groups, strict=True) if g == group]
        ax.scatter(xs, ys, s=14, label=group)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (s)")
    ax.set_ylabel("predicted (s)")
    ax.set_title(title or "Predicted vs measured")
    ax.legend(fontsize=8)


def plot_predicted_vs_measured(
    measured_s: Sequence[float],
    predicted_s: Sequence[float],
    groups: Sequence[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Predicted against measured times (:func:`draw_predicted_vs_measured`) into ``path``.
    Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, ax = plt.subplots(figsize=(6.0, 5.6))
    try:
        draw_predicted_vs_measured(ax, measured_s, predicted_s, groups, title)
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
