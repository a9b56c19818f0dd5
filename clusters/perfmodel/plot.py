"""Plot a sweep: value and rent against the swept input, break-even marked.

matplotlib is imported inside the function (Agg backend), so importing the package never
loads it.
"""

from __future__ import annotations

from pathlib import Path

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
