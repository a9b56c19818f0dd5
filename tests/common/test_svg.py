"""Charts built as inline SVG (common/svg.py): ticks, escaping, the <svg> element itself."""

import datetime as dt
import itertools
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from common import svg

SVG = "{http://www.w3.org/2000/svg}"


def test_count_ticks_use_round_steps_and_end_on_a_tick_at_or_above_the_top():
    assert svg.count_ticks(200, 560) == [0, 25, 50, 75, 100, 125, 150, 175, 200]
    assert svg.count_ticks(16_320, 560) == list(range(0, 17_501, 2_500))
    assert svg.count_ticks(7, 560) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert svg.count_ticks(0, 560) == [0, 1], "an empty fleet still has an axis"


def test_count_ticks_leave_room_for_their_labels_on_a_short_axis():
    assert svg.count_ticks(200_000, 560) == list(range(0, 200_001, 25_000))
    assert svg.count_ticks(200_000, 200) == [0, 100_000, 200_000]
    assert svg.count_ticks(10**9, 50) == [0, 10**9], "two labels, however little room"


@given(high=st.integers(0, 10**9), length=st.floats(100, 2000))
def test_count_ticks_are_even_round_and_cover_the_data(high, length):
    ticks = svg.count_ticks(high, length)
    step = ticks[1] - ticks[0]
    assert ticks[0] == 0
    assert ticks[-1] >= high
    assert ticks[-1] - step < max(high, 1), "no empty interval at the end"
    assert all(b - a == step for a, b in itertools.pairwise(ticks))
    assert str(step).rstrip("0") in {"1", "2", "25", "5"}
    assert len(ticks) <= 9


def test_month_ticks_are_the_first_days_of_the_months_on_the_axis():
    start = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    ticks = svg.month_ticks(start, start + dt.timedelta(days=180), 560)
    assert [f"{t:%Y-%m-%d}" for t in ticks] == [
        "2027-01-01",
        "2027-02-01",
        "2027-03-01",
        "2027-04-01",
        "2027-05-01",
        "2027-06-01",
    ]
    assert all(t.tzinfo is dt.UTC for t in ticks)
    first_of_month = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert svg.month_ticks(first_of_month, first_of_month + dt.timedelta(days=40), 560) == [
        first_of_month,
        dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
    ]


def test_month_ticks_thin_out_when_the_months_are_too_narrow_for_their_labels():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ticks = svg.month_ticks(start, start + dt.timedelta(days=730), 560)
    assert [f"{t:%Y-%m}" for t in ticks] == [
        "2026-01", "2026-05", "2026-09", "2027-01", "2027-05", "2027-09", "2028-01"
    ]  # fmt: skip


def test_a_drawing_is_labelled_scalable_inline_svg_with_text_and_attributes_escaped():
    d = svg.Drawing(200)
    d.text(10, 20, 'A<&> "lab"', text_anchor="end")
    d.marker("square", 50, 50, 10, svg.PALETTE[0], tip="L-1 · A<&>: term end")
    chart = d.render(100, title='Capacity <"&">')
    assert chart.startswith('<svg role="img" aria-label="Capacity &lt;&quot;&amp;&quot;&gt;"')
    assert "A&lt;&amp;&gt; &quot;lab&quot;" in chart
    root = ET.fromstring(chart)  # well-formed: nothing the text said became markup
    assert root.get("class") == "chart"
    assert root.get("viewBox") == "0 0 200 100"
    assert root.get("width") is None, "the page's CSS sizes it"
    (text,) = root.iter(f"{SVG}text")
    assert text.text == 'A<&> "lab"'
    assert text.get("text-anchor") == "end"
    assert text.get("fill") == "currentColor", "text takes the page's colour"
    (rect,) = root.iter(f"{SVG}rect")
    assert rect.find(f"{SVG}title").text == "L-1 · A<&>: term end"
    assert (rect.get("x"), rect.get("width")) == ("45", "10")


def test_legend_uses_as_many_columns_as_fit():
    entries = [(label, "bar", svg.PALETTE[0]) for label in ("one", "two", "three", "four")]
    wide, narrow = svg.Drawing(800), svg.Drawing(800)
    assert narrow.legend(entries, 0, 0, 120) == 2 * wide.legend(entries, 0, 0, 800)
    for drawing, rows in (
        (wide, [["one", "two", "three", "four"]]),
        (narrow, [["one", "two"], ["three", "four"]]),
    ):
        texts = list(ET.fromstring(drawing.render(100, title="t")).iter(f"{SVG}text"))
        by_row = {}
        for text in texts:
            by_row.setdefault(float(text.get("y")), []).append(text.text)
        assert list(by_row.values()) == rows
    assert svg.Drawing(800).legend([], 0, 0, 800) == 0
