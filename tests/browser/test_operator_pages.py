"""An operator in a real browser: log in, open the dashboard, see the charts drawn."""

import pytest

from clusters.demo import seed_inventory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_dashboard_draws_its_capacity_chart(operator_page):
    seed_inventory(scale=0.002)
    page = operator_page
    page.click("text=Dashboard")
    page.wait_for_url(f"{page.base_url}/operator/")
    chart = page.locator("[data-testid=capacity-chart] svg")
    box = chart.bounding_box()
    assert box is not None, "chart missing"
    assert box["width"] > 300, "chart not drawn"
    assert box["height"] > 100, "chart not drawn"
    # A labelled row for every campus and model of the fleet.
    labels = page.locator("[data-testid=capacity-chart] svg text").all_text_contents()
    for expected in ("Campus 1 (Elk Grove) · H100 SXM", "Campus 3 (Burr Ridge) · B200", "GPUs"):
        assert any(expected in text for text in labels), expected
    assert page.locator("text=GPUs in the fleet").is_visible()
    assert page.shot("dashboard").stat().st_size > 10_000
