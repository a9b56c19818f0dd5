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


def _luminance(rgb: str) -> float:
    """Relative luminance (WCAG) of a CSS `rgb(r, g, b)` colour."""
    r, g, b = (int(x) / 255 for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dashboard_charts_are_readable_in_light_and_dark(operator_page, scheme):
    """The charts' text and axes take the page's text colour, whichever the theme."""
    import datetime as dt

    from tests.factories.leasing import LeaseFactory, TenantFactory

    seed_inventory(scale=0.002)
    soon = dt.datetime.now(tz=dt.UTC).date() + dt.timedelta(days=20)
    tenant = TenantFactory(name="Lab <&> One")
    LeaseFactory(number="L-SOON", tenant=tenant, status="scheduled", commencement_date=soon)
    page = operator_page
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{page.base_url}/operator/")
    background = page.eval_on_selector("body", "e => getComputedStyle(e).backgroundColor")
    for chart in ("capacity-chart", "timeline-chart"):
        box = page.locator(f"[data-testid={chart}] svg").bounding_box()
        assert box is not None, chart
        assert box["width"] > 300, chart
        texts = page.locator(f"[data-testid={chart}] svg text")
        assert texts.count() > 5, chart
        for i in range(texts.count()):
            color = texts.nth(i).evaluate("e => getComputedStyle(e).fill")
            hi, lo = sorted((_luminance(color), _luminance(background)), reverse=True)
            assert (hi + 0.05) / (lo + 0.05) >= 4.5, f"{chart} {color} on {background} ({scheme})"
    labels = page.locator("[data-testid=timeline-chart] svg text").all_text_contents()
    assert "L-SOON · Lab <&> One" in labels
    page.shot(f"dashboard-{scheme}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_recommendations_are_readable_in_light_and_dark(operator_page, scheme):
    import datetime as dt

    from reclaim.models import ReclaimDecision

    today = dt.datetime.now(tz=dt.UTC).date()
    for recommendation in ("reclaim", "keep_leased"):
        ReclaimDecision.objects.create(
            title=f"decision {recommendation}",
            status="scored",
            scope_kind="lines",
            notice_date=today,
            recommendation=recommendation,
            previous_recommendation="keep_leased",
            flipped_at=dt.datetime.now(tz=dt.UTC),
        )
    page = operator_page
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{page.base_url}/operator/reclaim/")
    background = page.eval_on_selector("body", "e => getComputedStyle(e).backgroundColor")
    for selector in (".recommend-reclaim", ".recommend-keep", ".badge-flipped"):
        color = page.eval_on_selector(selector, "e => getComputedStyle(e).color")
        hi, lo = sorted((_luminance(color), _luminance(background)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 3, f"{selector} {color} on {background} ({scheme})"
    page.shot(f"reclaim-list-{scheme}")
