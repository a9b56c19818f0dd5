"""The operator dashboard: capacity by state, run-rate per tenant, upcoming dates."""

import datetime as dt
import itertools
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from config import dashboard
from leasing.models import Allocation, Notice
from tests.factories.clusters import accelerator, cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, TenantFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
SVG = "{http://www.w3.org/2000/svg}"


def hold(line, nodes, start, end):
    Allocation.objects.bulk_create(
        Allocation(line=line, node=n, starts_at=start, ends_at=end) for n in nodes
    )


@pytest.fixture
def fleet():
    """10 H100 nodes: 4 leased now, 2 reserved for a later lease, 1 down, 3 free."""
    cluster = cluster_with_nodes(10, accelerator=accelerator("h100"), gpus_per_node=8)
    nodes = list(cluster.nodes.order_by("pk"))
    lab = TenantFactory(name="Northwind AI")
    running = LeaseFactory(tenant=lab, commencement_date=dt.date(2026, 1, 1))
    line = LeaseLineFactory(
        lease=running, cluster=cluster, node_count=4, monthly_rate=Decimal("1250000000.00")
    )
    hold(line, nodes[:4], running.commencement, running.term_end)
    later = LeaseFactory(tenant=lab, status="scheduled", commencement_date=dt.date(2026, 5, 1))
    later_line = LeaseLineFactory(
        lease=later, cluster=cluster, node_count=2, monthly_rate=Decimal("10.00")
    )
    hold(later_line, nodes[4:6], later.commencement, later.term_end)
    nodes[6].status = "down"
    nodes[6].save()
    other = LeaseFactory(
        tenant=TenantFactory(name="Helios Labs"), commencement_date=dt.date(2026, 2, 1)
    )
    LeaseLineFactory(
        lease=other, cluster=cluster, node_count=1, monthly_rate=Decimal("920000000.00")
    )
    return cluster, running, later


def test_each_node_counts_in_exactly_one_state(fleet, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        (row,) = dashboard.capacity(NOW)
    assert row.gpus == {"leased": 32, "reserved": 16, "free": 24, "down": 8}
    assert row.total == 80


def test_a_leased_node_that_goes_down_still_counts_as_leased(fleet):
    cluster, *_ = fleet
    cluster.nodes.filter(pk=cluster.nodes.order_by("pk")[0].pk).update(status="down")
    (row,) = dashboard.capacity(NOW)
    assert row.gpus == {"leased": 32, "reserved": 16, "free": 24, "down": 8}


def test_run_rate_counts_running_lines_per_tenant(fleet):
    rates = dashboard.run_rate_by_tenant(NOW)
    assert [(r["tenant"], r["monthly_rate"]) for r in rates] == [
        ("Northwind AI", Decimal("1250000000.00")),
        ("Helios Labs", Decimal("920000000.00")),
    ]
    assert rates[0]["monthly_rate_display"] == "$1,250,000,000.00"


def test_milestones_list_term_ends_commencements_and_notices(fleet):
    _, running, later = fleet
    Notice.objects.create(
        lease=running,
        given_by="tenant",
        received_at=NOW,
        notice_date=NOW.date(),
        effective_end=dt.datetime(2026, 5, 31, tzinfo=dt.UTC),
        outcome="ends",
    )
    kinds = [(m.kind, m.lease) for m in dashboard.milestones(NOW)]
    assert ("notice effective", running.number) in kinds
    assert ("commencement", later.number) in kinds
    assert ("term end", running.number) in kinds
    assert kinds.index(("notice effective", running.number)) < kinds.index(
        ("term end", running.number)
    ), "sorted by date"


def test_page_is_staff_only_and_draws_its_charts(client, django_user_model, fleet):
    url = reverse("operator:dashboard")
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(django_user_model.objects.create_user("tenant-user", password="pw"))
    assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(url).content.decode()
    assert page.count('<svg role="img"') == 1, "nothing upcoming today: no empty timeline"
    assert "Nothing in the next 180 days." in page
    soon = dt.datetime.now(tz=dt.UTC).date() + dt.timedelta(days=20)
    LeaseFactory(number="L-SOON", status="scheduled", commencement_date=soon)
    page = client.get(url).content.decode()
    assert page.count('<svg role="img"') == 2
    assert "L-SOON" in page
    assert "currentColor" in page, "chart ink follows the theme's text colour"
    # The fixture's leases (from January 2026) have ended by now: no rent runs.
    assert "No running leases." in page
    started = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=10)
    lease = LeaseFactory(tenant=TenantFactory(name="Today's lab"), commencement_date=started)
    LeaseLineFactory(lease=lease, node_count=1, monthly_rate=Decimal("2170000000.00"))
    page = client.get(url).content.decode()
    assert "Today&#x27;s lab" in page
    assert "$2,170,000,000.00" in page


def test_cross_campus_section_explains_why_training_across_campuses_is_poor():
    from clusters.demo import seed_inventory

    seed_inventory(scale=0.004)
    cross = dashboard.cross_campus(NOW)
    assert len(cross["links"]) == 3
    assert cross["ratio"] > 1.5, "the best placement beats synchronous-everywhere"
    assert cross["all_sync"]["efficiency"] < cross["best"]["efficiency"]
    reasons = " ".join(cross["assessment"]["explanation"])
    assert "slowest pool" in reasons
    assert "inter-site sync" in reasons


def test_open_decisions_are_listed_with_their_recommendation(client, django_user_model):
    from reclaim.models import ReclaimDecision

    ReclaimDecision.objects.create(
        title="Take back campus 1 H100s",
        status="scored",
        scope_kind="cluster",
        notice_date=NOW.date(),
        recommendation="keep_leased",
        internal_value=Decimal("12127297.85"),
        rent_forgone=Decimal("6429185437.81"),
        net_value=Decimal("-6417058139.96"),
    )
    ReclaimDecision.objects.create(
        title="Rejected one", status="rejected", scope_kind="lease", notice_date=NOW.date()
    )
    assert [d.title for d in dashboard.open_decisions()] == ["Take back campus 1 H100s"]
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(reverse("operator:dashboard")).content.decode()
    assert "Take back campus 1 H100s" in page
    assert "-$6,417,058,139.96" in page
    assert "Keep leased" in page


def test_admin_index_links_every_operator_page(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(reverse("admin:index")).content.decode()
    for name in (
        "operator:dashboard",
        "operator:capacity",
        "operator:reclaim:list",
        "billing:revenue",
    ):
        url = reverse(name)
        assert f'href="{url}"' in page, name
        assert client.get(url).status_code == 200, name


def test_dashboard_renders_when_no_node_can_run(client, django_user_model):
    from tests.factories.clusters import ClusterFactory, NodeFactory

    ClusterFactory()  # a cluster being entered: no nodes yet
    NodeFactory(status="down")
    assert dashboard.cross_campus(NOW)["assessment"] is None
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    assert client.get(reverse("operator:dashboard")).status_code == 200


def test_run_rate_leaves_out_leases_past_their_end(fleet):
    """A lease in holdover (ended, nodes not yet released) pays holdover, not monthly rent."""
    _, running, _ = fleet
    running.status = "holdover"
    running.effective_end = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    running.save()
    assert [r["tenant"] for r in dashboard.run_rate_by_tenant(NOW)] == ["Helios Labs"]


def test_dashboard_and_revenue_page_agree_on_the_run_rate():
    """The two pages compute the running rent separately (one in SQL filters, one in Python
    over the lines it reads for accruals); on the demo book they must agree to the cent."""
    from billing.demo import seed_billing
    from billing.selectors import revenue_summary
    from clusters.demo import seed_inventory
    from leasing.demo import seed_leasing

    now = dt.datetime(2026, 11, 27, 15, tzinfo=dt.UTC)
    seed_inventory(scale=0.01)
    seed_leasing(now=now)
    seed_billing(now=now)
    dashboard_total = sum(r["monthly_rate"] for r in dashboard.run_rate_by_tenant(now))
    assert dashboard_total > 0
    assert dashboard_total == revenue_summary(now=now).run_rate


def test_the_timeline_is_drawn_once_a_day_not_on_every_visit(monkeypatch):
    """Its axis starts at the start of the day (UTC), so visits later the same day reuse the
    drawing; the next day, or a new milestone, draws it again."""
    drawn = []
    draw = dashboard._draw_timeline
    monkeypatch.setattr(
        dashboard,
        "_draw_timeline",
        lambda items, today, days: drawn.append(today) or draw(items, today, days),
    )
    items = [dashboard.Milestone(NOW + dt.timedelta(days=30), "term end", "L-0001", "Northwind AI")]
    morning = dashboard.timeline_chart(items, NOW.replace(hour=0, minute=1))
    evening = dashboard.timeline_chart(items, NOW.replace(hour=23, minute=59))
    assert evening == morning
    assert drawn == [NOW.replace(hour=0)]
    dashboard.timeline_chart(items, NOW + dt.timedelta(days=1))
    more = [
        *items,
        dashboard.Milestone(NOW + dt.timedelta(days=40), "commencement", "L-0002", "Lab"),
    ]
    dashboard.timeline_chart(more, NOW)
    assert drawn == [
        NOW.replace(hour=0),
        NOW.replace(hour=0) + dt.timedelta(days=1),
        NOW.replace(hour=0),
    ]


def _chart(svg_text):
    """The chart parsed (it must be well-formed), its texts, and its elements with a tooltip."""
    root = ET.fromstring(svg_text)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    tipped = {
        el.find(f"{SVG}title").text: el for el in root.iter() if el.find(f"{SVG}title") is not None
    }
    return root, texts, tipped


def test_capacity_chart_draws_a_segment_per_state_in_proportion_to_its_gpus():
    elk = dashboard.CapacityRow("Campus 1 (Elk Grove)", "H100 SXM")
    elk.gpus.update(leased=12_000, reserved=1_600, free=2_400, down=320)
    burr = dashboard.CapacityRow("Campus 3 (Burr Ridge)", "B200")
    burr.gpus.update(free=2_000)  # the other states are zero: no segment for them
    root, texts, tipped = _chart(dashboard._draw_capacity([elk, burr]))
    assert root.get("role") == "img"
    assert root.get("aria-label") == "GPUs by campus, model and state"
    assert root.get("class") == "chart"
    assert root.get("viewBox")
    elk_label, burr_label = "Campus 1 (Elk Grove) · H100 SXM", "Campus 3 (Burr Ridge) · B200"
    assert list(tipped) == [
        f"{elk_label}: 12,000 GPUs leased now",
        f"{elk_label}: 1,600 GPUs reserved (lease starts later)",
        f"{elk_label}: 2,400 GPUs not leased (internal or free)",
        f"{elk_label}: 320 GPUs down / maintenance",
        f"{burr_label}: 2,000 GPUs not leased (internal or free)",
    ]
    segments = [(float(r.get("x")), float(r.get("width"))) for r in tipped.values()]
    gpus = [12_000, 1_600, 2_400, 320, 2_000]
    per_gpu = segments[0][1] / gpus[0]
    for (_, width), n in zip(segments, gpus, strict=True):
        assert width == pytest.approx(n * per_gpu, abs=0.01)
    for (x, width), (next_x, _) in itertools.pairwise(segments[:4]):
        assert next_x == pytest.approx(x + width, abs=0.01), "stacked end to end"
    assert segments[4][0] == segments[0][0], "every bar starts at zero"
    ticks = [t for t in texts if t[0].isdigit()]
    assert ticks == ["0", "2,500", "5,000", "7,500", "10,000", "12,500", "15,000", "17,500"]
    assert {elk_label, burr_label, "GPUs", *dashboard.STATE_LABELS.values()} <= set(texts)
    axis_end = (17_500 - 0) * per_gpu + segments[0][0]
    (last_tick,) = [t for t in root.iter(f"{SVG}text") if t.text == "17,500"]
    assert float(last_tick.get("x")) == pytest.approx(axis_end, abs=0.01)


def test_capacity_chart_of_an_empty_fleet_still_draws_its_axes():
    _, texts, tipped = _chart(dashboard._draw_capacity([]))
    assert tipped == {}
    assert texts[:2] == ["0", "1"]
    assert "GPUs" in texts


def test_timeline_chart_places_each_milestone_by_date_with_its_kind_and_escapes_names():
    today = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    items = [
        dashboard.Milestone(today + dt.timedelta(days=31), "term end", "L-0001", "Northwind AI"),
        dashboard.Milestone(
            today + dt.timedelta(days=61), "notice effective", "L-0001", "Northwind AI"
        ),
        dashboard.Milestone(
            today + dt.timedelta(days=92), "renewal starts", "L-0002", 'A<&> "lab"'
        ),
        dashboard.Milestone(
            today + dt.timedelta(days=122, hours=12), "commencement", "L-0003", "Lab"
        ),
    ]
    chart = dashboard._draw_timeline(items, today, 180)
    assert "L-0002 · A&lt;&amp;&gt; &quot;lab&quot;" in chart
    assert "<&>" not in chart
    root, texts, tipped = _chart(chart)
    assert root.get("aria-label") == "Upcoming term ends, notices and renewals"
    assert root.get("class") == "chart"
    rows = ["L-0001 · Northwind AI", 'L-0002 · A<&> "lab"', "L-0003 · Lab"]
    assert texts[:4] == ["term end", "notice effective", "renewal starts", "commencement"]
    ticks = ["2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01", "2026-07-01", "2026-08-01"]
    assert texts[4:] == [*ticks, *rows, "date (UTC), next 180 days"]
    tick_x = {t.text: float(t.get("x")) for t in root.iter(f"{SVG}text") if t.text in ticks}
    per_day = (tick_x["2026-08-01"] - tick_x["2026-03-01"]) / 153
    assert tick_x["2026-04-01"] - tick_x["2026-03-01"] == pytest.approx(31 * per_day, abs=0.02)
    assert list(tipped) == [
        "L-0001 · Northwind AI: term end 2026-04-01",
        "L-0001 · Northwind AI: notice effective 2026-05-01",
        'L-0002 · A<&> "lab": renewal starts 2026-06-01',
        "L-0003 · Lab: commencement 2026-07-01",
    ]
    shapes = [el.tag.removeprefix(SVG) for el in tipped.values()]
    assert shapes == ["rect", "path", "polygon", "circle"], "a distinct shape per kind"
    colours = [el.get("fill") or el.get("stroke") for el in tipped.values()]
    assert len(set(colours)) == 4
    term_end, _, _, commencement = tipped.values()
    assert float(term_end.get("x")) + float(term_end.get("width")) / 2 == pytest.approx(
        tick_x["2026-04-01"], abs=0.01
    )
    assert float(commencement.get("cx")) == pytest.approx(
        tick_x["2026-07-01"] + 0.5 * per_day, abs=0.01
    ), "placed by the time of day too"
    rows_y = {t.text: float(t.get("y")) for t in root.iter(f"{SVG}text") if t.text in rows}
    assert float(commencement.get("cy")) == rows_y["L-0003 · Lab"]
    today_band = next(r for r in root.iter(f"{SVG}rect") if r.get("fill-opacity"))
    assert float(today_band.get("x")) == pytest.approx(tick_x["2026-03-01"], abs=0.01)
    assert float(today_band.get("width")) == pytest.approx(per_day, abs=0.01), "today shaded"


def test_every_row_links_to_where_it_is_acted_on(client, django_user_model, fleet):
    """Capacity rows open their campus and model's nodes, tenants their leases, milestones
    their lease; every link opens."""
    cluster, _running, _later = fleet
    today = timezone.now().date()
    now_running = LeaseFactory(tenant=TenantFactory(name="Orion Labs"), commencement_date=today)
    LeaseLineFactory(lease=now_running, cluster=cluster, node_count=1)
    user = django_user_model.objects.create_superuser("op-links", "l@example.com", "x")
    client.force_login(user)
    html = client.get(reverse("operator:dashboard")).content.decode()
    nodes = (
        reverse("admin:clusters_node_changelist")
        + f"?cluster__site__id__exact={cluster.site_id}"
        + f"&amp;cluster__accelerator__id__exact={cluster.accelerator_id}"
    )
    assert f'href="{nodes}"' in html
    rates = dashboard.run_rate_by_tenant(timezone.now())
    assert rates
    for rate in rates:
        assert f'href="{escape(rate["url"])}">{rate["tenant"]}</a>' in html
    leases = rates[0]["url"]
    upcoming = dashboard.milestones(timezone.now())
    assert upcoming
    for milestone in upcoming:
        assert f'href="{milestone.lease_url}">{milestone.lease}</a>' in html
    for url in (nodes.replace("&amp;", "&"), leases):
        assert client.get(url).status_code == 200
