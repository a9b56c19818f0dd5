"""Charts name their bars and write money the one way (common/plots.py `money_short`)."""

import re

from common.plots import money_short
from reclaim.charts import tornado_chart


def texts(svg: str) -> list[str]:
    return re.findall(r">([^<>]+)</text>", svg)


def test_money_short_is_the_one_short_money_style():
    assert money_short(350e6) == "$350M"
    assert money_short(1.25e9) == "$1.25B"
    assert money_short(-12_000) == "-$12k"
    assert money_short(0) == "$0"
    assert money_short(2.5e6, "EUR") == "2.5M EUR"


def test_the_tornado_names_its_inputs_and_puts_money_on_its_value_axis():
    """Money runs along x; the bars carry the inputs' names (a money formatter on the bars'
    axis once replaced them with "$0", "$1")."""
    uncertainty = {
        "tornado": [
            {
                "knob": "scarcity_factor",
                "low": 0.5,
                "high": 2,
                "net_at_low_usd": -3e8,
                "net_at_high_usd": 5e8,
            },
            {
                "knob": "mfu_factor",
                "low": 0.8,
                "high": 1.2,
                "net_at_low_usd": -1e8,
                "net_at_high_usd": 1e8,
            },
        ],
        "net_usd": {"base": -2e8},
    }
    labels = texts(tornado_chart(uncertainty))
    assert "scarcity × 0.5–2" in labels
    assert "kernel MFU × 0.8–1.2" in labels
    assert "$500M" in labels
    assert "-$300M" in labels
    assert "$1" not in labels
