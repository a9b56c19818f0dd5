"""Results cached by their inputs (common/memo.py): a hit only for the same inputs."""

import datetime as dt
from decimal import Decimal

from common.memo import by_content, content_key


def test_the_same_inputs_compute_once_and_other_inputs_compute_again():
    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return {"value": value}

        return run

    inputs = {"b": [1, 2], "a": Decimal("1.50"), "at": dt.datetime(2026, 12, 7, tzinfo=dt.UTC)}
    assert by_content("t", inputs, compute(1)) == {"value": 1}
    # Same content, keys in another order: a hit, computed once.
    same = {"at": dt.datetime(2026, 12, 7, tzinfo=dt.UTC), "a": Decimal("1.50"), "b": [1, 2]}
    assert by_content("t", same, compute(2)) == {"value": 1}
    # Any change of the inputs, or another prefix, is another key.
    assert by_content("t", {**inputs, "b": [2, 1]}, compute(3)) == {"value": 3}
    assert by_content("u", inputs, compute(4)) == {"value": 4}
    assert calls == [1, 3, 4]
    assert content_key("t", inputs) == content_key("t", same) != content_key("u", inputs)
